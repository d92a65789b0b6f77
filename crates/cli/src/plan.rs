//! `flatlab plan ...` and `flatlab render`: plans in the store, and their rendered bundles.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use flatlab_api::{Flatlab, ImportPolicy, format_time, read_plan_file, validate_text};
use flatlab_model::{Severity, count};

use crate::args::PlanCommand;
use crate::output::{plural, problems, tally};

pub async fn validate(file: &Path, json: bool, lan: bool) -> anyhow::Result<ExitCode> {
    let text = read_plan_file(file)?;
    let findings = if lan { flatlab_api::validate_text_on_lan(&text).await } else { validate_text(&text) };
    if json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "findings": findings }))?);
    } else {
        for f in &findings {
            println!("{f}");
        }
        eprintln!("{}: {}", file.display(), tally(&findings));
    }
    Ok(if count(&findings, Severity::Error) > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

pub async fn run(app: &Flatlab, cmd: PlanCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        // `main` runs it before opening a database; here too it needs none.
        PlanCommand::Validate { file, json, lan } => return validate(&file, json, lan).await,
        PlanCommand::Import { file, allow_errors } => {
            let policy = if allow_errors { ImportPolicy::KeepErrors } else { ImportPolicy::Strict };
            let outcome = app.import_file(&file, policy).await?;
            for f in &outcome.findings {
                eprintln!("{f}");
            }
            let s = &outcome.saved;
            if s.changed {
                eprintln!("saved plan {} as revision {} ({})", s.name, s.revision, tally(&outcome.findings));
            } else {
                eprintln!("plan {} is unchanged (revision {})", s.name, s.revision);
            }
            println!("{}", s.name);
        }
        PlanCommand::List { json } => {
            let plans = app.list_plans().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plans)?);
            } else if plans.is_empty() {
                eprintln!("no plans yet: `flatlab plan import FILE` adds one");
            } else {
                let width = plans.iter().map(|p| p.summary.name.len()).max().unwrap_or(4).max(4);
                println!("{:<width$}  {:>8}  {:>5}  {:<20}  PROBLEMS", "NAME", "REVISION", "NODES", "UPDATED");
                for p in &plans {
                    println!(
                        "{:<width$}  {:>8}  {:>5}  {:<20}  {}",
                        p.summary.name,
                        p.summary.revision,
                        p.nodes,
                        format_time(p.summary.updated_at),
                        problems(p.errors as usize, p.warnings as usize)
                    );
                }
            }
        }
        PlanCommand::Show { name, revision, json } => {
            if json {
                let view = app.show_plan(&name, revision).await?;
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print!("{}", app.export_text(&name, revision).await?);
            }
        }
        PlanCommand::Export { name, output, revision } => {
            if output == Path::new("-") {
                print!("{}", app.export_text(&name, revision).await?);
            } else {
                let written = app.export_plan(&name, revision, &output).await?;
                eprintln!("wrote revision {written} of plan {name} to {}", output.display());
            }
        }
        PlanCommand::Rm { name } => {
            let revisions = app.delete_plan(&name).await.with_context(|| format!("removing plan {name}"))?;
            eprintln!("removed plan {name} and its {}", plural(revisions as usize, "revision"));
        }
        PlanCommand::History { name, json } => {
            let history = app.history(&name).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&history)?);
            } else {
                println!("{:>8}  {:<20}  MESSAGE", "REVISION", "SAVED");
                for h in history {
                    println!("{:>8}  {:<20}  {}", h.revision, format_time(h.created_at), h.message);
                }
            }
        }
        PlanCommand::Revert { name, revision } => {
            let saved = app.revert(&name, revision).await?;
            if saved.changed {
                eprintln!("plan {name} is back to revision {revision}, saved as revision {}", saved.revision);
            } else {
                eprintln!("plan {name} already equals revision {revision}; nothing saved");
            }
        }
        PlanCommand::Rename { name, new_name } => {
            app.rename_plan(&name, &new_name).await?;
            eprintln!("renamed plan {name} to {new_name}");
            println!("{new_name}");
        }
        PlanCommand::Copy { name, new_name } => {
            app.duplicate_plan(&name, &new_name).await?;
            eprintln!("copied plan {name} to {new_name}");
            println!("{new_name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn plan_name(app: &Flatlab, plan: &str) -> anyhow::Result<String> {
    if is_plan_file(plan) {
        let outcome = app.import_file(Path::new(plan), ImportPolicy::Strict).await?;
        let s = &outcome.saved;
        eprintln!("stored {plan} as plan {} revision {} (its secrets stay in the database)", s.name, s.revision);
        Ok(s.name.clone())
    } else {
        Ok(plan.to_owned())
    }
}

/// A plan argument names a file when it looks like a path or a YAML file name.
fn is_plan_file(arg: &str) -> bool {
    arg == "-" || arg.contains('/') || arg.ends_with(".yaml") || arg.ends_with(".yml") || Path::new(arg).is_file()
}

pub async fn render(app: &Flatlab, plan: &str, output: &Path, base_url: Option<&str>) -> anyhow::Result<ExitCode> {
    let name = plan_name(app, plan).await?;
    for f in app.show_plan(&name, None).await?.findings.iter().filter(|f| f.severity == Severity::Warning) {
        eprintln!("{f}");
    }
    let base_url = base_url.unwrap_or(flatlab_api::PLACEHOLDER_BASE_URL);
    let (bundle, written) = app.render_to_folder(&name, base_url, output, &mut rand::rng()).await?;
    eprintln!(
        "wrote {} for plan {name} ({}) to {}",
        plural(written.len(), "file"),
        plural(bundle.nodes.len(), "node"),
        output.display()
    );
    eprintln!(
        "note: nodes/*/config.ign hold the cluster's K3s token, and the first server's the keys of its certificate authorities; node files are readable by you only"
    );
    if base_url == flatlab_api::PLACEHOLDER_BASE_URL {
        eprintln!("note: no --base-url given: boot.ipxe and install.ign point at {base_url} (see README.md)");
    }
    Ok(ExitCode::SUCCESS)
}
