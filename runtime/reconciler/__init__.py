"""Credit reconciler: exactly-once settlement of video jobs against prepaid credits."""
