"""pushdesk: self-hosted Web Push delivery for news publishers."""

__version__ = "0.1.0"
