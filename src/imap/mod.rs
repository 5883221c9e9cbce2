//! IMAP: connecting, finding AliExpress candidates without downloading the
//! mailbox, IDLE with a polling fallback, and reconnects with backoff.
