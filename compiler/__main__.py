"""``python -m exo.compiler`` is ``exoc``."""

from exo.compiler.launch import main

main()
