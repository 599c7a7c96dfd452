"""Domain rules: the working-day calendar, the catalogue's loading and checks, forms,
ID numbers, step results, timeliness, masking of personal data and sample data.

Pure Python over the data shapes in ``models/`` (which never import this package): no
database, no HTTP, no Temporal; workflow code imports it through the sandbox's passthrough.
"""
