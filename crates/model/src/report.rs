//! `detector report` and `detector plot`.
