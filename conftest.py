"""Root conftest: loads the AWS call recorder for the whole suite (tests/least_privilege/recorder.py).

It records every AWS API call the tests cause (botocore's BaseClient._make_api_call, chained with whatever
patch is installed before it), attributes each to the Lambda function's code, the operator CLI, or test set-up,
and at the end of a full run fails the run if the synthesized function role or operator policies allow a call
that never happens or miss one that does. See docs/infrastructure.md, "Least privilege, proven".
"""

pytest_plugins = ["tests.least_privilege.recorder"]
