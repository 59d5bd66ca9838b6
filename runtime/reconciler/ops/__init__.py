"""The operators' use cases behind the `reconciler` CLI and the smoke test, their ports (operator_ports.py), their
AWS adapters (aws.py; the books' store is repository/dynamodb_operations.py) and their composition root
(target.py), which builds each use case for a stage or a local stack. Not in the Lambda asset."""
