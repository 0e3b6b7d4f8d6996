"""Who may do what: users, tokens, settings, the audit log and what each user may see."""
