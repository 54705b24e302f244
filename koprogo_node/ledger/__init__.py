"""The SQLite ledger: single writer, hash-chained blocks, rollups, retention."""
