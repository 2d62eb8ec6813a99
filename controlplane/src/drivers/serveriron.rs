//! ServerIron-CLI devices over telnet (work in progress).
