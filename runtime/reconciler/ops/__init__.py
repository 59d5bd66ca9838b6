"""Operations use cases behind the `reconciler` CLI and the smoke test.

Pure logic (audit math, dead-letter parsing, replay bookkeeping) lives in modules that import no boto3;
`aws.py` and `invokers.py` hold the AWS calls.
"""
