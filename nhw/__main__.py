"""``python -m nhw`` runs the ``nhw`` command line."""

from nhw.toolchain.cli import main

if __name__ == "__main__":
    main()
