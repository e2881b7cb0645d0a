"""``python -m vaekit ...``: the ``vaekit`` command (what ``torchrun -m vaekit train ...`` runs per rank)."""
from .app.cli import main

if __name__ == "__main__":
    main()
