"""Data: the IDX format, the fetch chain (folder, cache, mirrors, npm), datasets in memory, batching."""
