"""``ds01-watcher doctor``: facts gathered from the host, checked by pure rules with fixes."""
