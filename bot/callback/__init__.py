"""WeCom callback intake: verify, decrypt, dedupe, store in the inbox, acknowledge; then dispatch."""
