"""exo compiler: .exo text -> syntax tree -> IR -> plan -> reports."""

__version__ = "0.1.0"
