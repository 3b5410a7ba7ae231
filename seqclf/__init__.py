"""seqclf: sequence classification from CSV with Keras."""

__version__ = "0.1.0"

__all__ = ["SequenceClassifier", "__version__"]


def __getattr__(name: str):
    """``seqclf.SequenceClassifier``, imported on first use: ``import seqclf`` (and so
    ``seqclf --help``) never loads scikit-learn or TensorFlow."""
    if name == "SequenceClassifier":
        from seqclf.estimator import SequenceClassifier

        return SequenceClassifier
    raise AttributeError(f"module 'seqclf' has no attribute {name!r}")
