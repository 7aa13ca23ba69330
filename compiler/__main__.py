"""``python -m exo.compiler`` is ``exoc``."""

from exo.compiler.cli import main

main()
