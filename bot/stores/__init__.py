"""Stores, guides, channels, aggregated LBS QR codes and the contact ways behind them."""
