"""Evaluation against ground truth: metrics, tables, figures and the report."""
