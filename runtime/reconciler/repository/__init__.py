"""DynamoDB access: the only layer that knows table layouts, expressions and AWS error codes."""
