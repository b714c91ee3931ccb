"""Deployment: the template merged into `chalice package`, the IAM policies, offline packaging."""
