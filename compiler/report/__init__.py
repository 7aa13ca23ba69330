"""Plan reports: the terminal report, Markdown, a self-contained HTML page, what-if and diff.

Every renderer is a pure function of a :class:`~exo.compiler.report.facts.Report`
(computed once from a plan and, when known, the program and the catalog), so the
formats always agree with each other.
"""
