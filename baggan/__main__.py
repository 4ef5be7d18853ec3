"""`python -m baggan …` (also what `torchrun -m baggan …` runs on every rank)."""

from baggan.cli import main

if __name__ == "__main__":
    main()
