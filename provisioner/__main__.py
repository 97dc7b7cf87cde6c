"""``python -m provisioner`` runs the CLI."""

from provisioner.cli.app import main

if __name__ == "__main__":
    main()
