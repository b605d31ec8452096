"""Reading people's files: enterprise declarations and institution applications, parsed, checked and written all-or-nothing."""
