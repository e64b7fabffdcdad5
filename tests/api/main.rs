//! Integration tests: the real HTTP app, driven through every endpoint and error of the contract.

mod common;

mod acme;

mod audit;
mod auth;
mod backup;
mod browser;
mod bulk;
mod channel_self;
mod cli;
mod console;
mod crash;
mod damage;
mod devices;
mod disk;
mod erase;
mod errors;
mod export;
mod filters;
mod https;
mod import;
mod limits;
mod nodes;
mod openapi;
mod ops;
mod persistence;
mod pg;
mod plugin;
mod process;
mod properties;
mod registry;
mod replay;
mod resolve;
mod rollout;
mod slow;
mod summary;
mod sweep;
mod updates;
mod webdriver;
mod workers;
