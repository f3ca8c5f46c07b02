"""HQ campaigns: an audience reached through each customer's own guide, and what it achieved."""
