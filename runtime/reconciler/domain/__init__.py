"""Pure settlement logic: no AWS, no I/O. Credits are whole numbers; prices are Decimal."""
