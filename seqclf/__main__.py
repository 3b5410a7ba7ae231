"""``python -m seqclf`` runs the command line."""

from seqclf.cli import main

main()
