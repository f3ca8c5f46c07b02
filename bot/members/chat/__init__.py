"""Customers chatting through 微信客服: intents, answers, and the exactly-once sync of messages."""
