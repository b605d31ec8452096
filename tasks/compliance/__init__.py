"""The compliance pass of continuous review: derive payables, find each rule's violations set-based, reconcile them."""
