"""Shared text code for the sentiment task: datasets and tokenisation (`data`), models (`models`)."""
