"""A B2B SaaS: `account_id` keys, a true/false `churned` target, flags and an open category."""
