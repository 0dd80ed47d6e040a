//! `stir diff OLD.json NEW.json`: the review of two plans, like `terraform plan`.

use std::path::PathBuf;

use super::{print_review, read_plan, Exit, Failure};
use crate::review::ReviewFormat;

/// `stir diff OLD NEW`
#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The previous plan.
    pub old: PathBuf,
    /// The new plan.
    pub new: PathBuf,
    #[arg(long, value_enum, default_value_t = ReviewFormat::Human)]
    pub format: ReviewFormat,
    /// Exit 0 when the plans match, 2 when they differ, 1 on any error.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

pub fn run(args: &DiffArgs) -> Result<Exit, Failure> {
    let old = read_plan(&args.old)?;
    let new = read_plan(&args.new)?;
    print_review(&old, &new, &args.old, args.format)
}
