"""Ops alerts that explain themselves (issue #6): what happened, to whom, how much, what to run.

The event path imports this package only when an outcome needs a person; reconciler.bootstrap builds the
container's notifier on first use.
"""
