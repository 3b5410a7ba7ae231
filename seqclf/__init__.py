"""seqclf: sequence classification from CSV with Keras recurrent networks."""

__version__ = "0.1.0"
