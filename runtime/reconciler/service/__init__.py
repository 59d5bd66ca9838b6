"""Use cases: validate, decide (domain) and commit (repository), with retries; no boto3 here."""
