//! Notifications: the daily digest and Buyer Protection warnings — what is
//! due (pure), how they look (pure), and sending them over SMTP.
