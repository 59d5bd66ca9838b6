"""A deterministic simulator of the money path (make sim) and the AWS fidelity layer every test uses.

Not part of the Lambda asset (only runtime/ is packaged) nor of the installed CLI."""
