"""Reporting: the HTML/Markdown report, its plots, terminal tables, generated docs pages, and the formats peers
read (MLPerf-style logs, TensorBoard)."""
