//! Jobs and CronJobs: counts, completion modes, selectors, restart policies, cron schedules,
//! and the parts of a Job that may not change once it exists.

use serde_json::Value;

use super::meta::{label_selector, selector_matches};
use super::pod::pod_template_spec;
use super::*;

pub(super) fn job(object: &Value, errs: &mut Vec<Cause>) {
    let spec = &object["spec"];
    job_spec(spec, "spec", errs);
    let selector = &spec["selector"];
    if !selector.is_object() {
        errs.push(required("spec.selector", ""));
    } else {
        label_selector(selector, "spec.selector", errs);
        let template_labels = &spec["template"]["metadata"]["labels"];
        if selector_matches(selector, template_labels) == Some(false) {
            errs.push(invalid(
                "spec.template.metadata.labels",
                template_labels,
                "`selector` does not match template `labels`",
            ));
        }
    }
}

/// `validateJobSpec`: what a Job and a CronJob's job template share.
fn job_spec(spec: &Value, path: &str, errs: &mut Vec<Cause>) {
    for field in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        nonnegative(spec, field, &child(path, field), errs);
    }
    match spec.get("completionMode").and_then(Value::as_str) {
        None | Some("NonIndexed") => {}
        Some("Indexed") => {
            if !is_set(spec, "completions") {
                errs.push(required(&child(path, "completions"), "when completion mode is Indexed"));
            }
        }
        Some(other) => errs.push(not_supported(
            &child(path, "completionMode"),
            &Value::from(other),
            &["NonIndexed", "Indexed"],
        )),
    }
    let template_path = child(path, "template");
    pod_template_spec(&spec["template"], &template_path, errs);
    let policy = string(&spec["template"]["spec"], "restartPolicy");
    if policy != "OnFailure" && policy != "Never" {
        errs.push(not_supported(
            &child(&child(&template_path, "spec"), "restartPolicy"),
            &Value::from(policy),
            &["OnFailure", "Never"],
        ));
    }
}

pub(super) fn cron_job(object: &Value, errs: &mut Vec<Cause>) {
    let name = string(&object["metadata"], "name");
    if name.len() > 52 {
        errs.push(invalid_str("metadata.name", name, "must be no more than 52 characters"));
    }
    let spec = &object["spec"];
    let schedule = string(spec, "schedule");
    if schedule.is_empty() {
        errs.push(required("spec.schedule", ""));
    } else if schedule.contains("TZ") {
        errs.push(invalid_str(
            "spec.schedule",
            schedule,
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ));
    } else if let Err(e) = cron_schedule(schedule) {
        errs.push(invalid_str("spec.schedule", schedule, &e));
    }
    nonnegative(spec, "startingDeadlineSeconds", "spec.startingDeadlineSeconds", errs);
    one_of(
        spec,
        "concurrencyPolicy",
        "spec.concurrencyPolicy",
        &["Allow", "Forbid", "Replace"],
        true,
        errs,
    );
    nonnegative(spec, "successfulJobsHistoryLimit", "spec.successfulJobsHistoryLimit", errs);
    nonnegative(spec, "failedJobsHistoryLimit", "spec.failedJobsHistoryLimit", errs);
    let time_zone = string(spec, "timeZone");
    if is_set(spec, "timeZone")
        && (time_zone.is_empty() || time_zone.contains(' ') || time_zone.starts_with('/'))
    {
        errs.push(invalid_str("spec.timeZone", time_zone, "unknown time zone"));
    }
    let template = &spec["jobTemplate"]["spec"];
    job_spec(template, "spec.jobTemplate.spec", errs);
    if let Some(selector) = template.get("selector").filter(|s| !s.is_null()) {
        errs.push(invalid(
            "spec.jobTemplate.spec.selector",
            selector,
            "`selector` will be auto-generated",
        ));
    }
    if template["manualSelector"] == true {
        errs.push(not_supported(
            "spec.jobTemplate.spec.manualSelector",
            &Value::Bool(true),
            &["nil", "false"],
        ));
    }
}

/// `ValidateJobSpecUpdate`: selector, completion mode and (unless suspended) the template are
/// fixed; completions only change with parallelism in an Indexed job.
pub(super) fn job_update(old: &Value, new: &Value, errs: &mut Vec<Cause>) {
    let (old_spec, new_spec) = (&old["spec"], &new["spec"]);
    immutable(&old_spec["selector"], &new_spec["selector"], "spec.selector", errs);
    immutable(
        &old_spec["completionMode"],
        &new_spec["completionMode"],
        "spec.completionMode",
        errs,
    );
    immutable(
        &old_spec["podFailurePolicy"],
        &new_spec["podFailurePolicy"],
        "spec.podFailurePolicy",
        errs,
    );
    immutable(&old_spec["managedBy"], &new_spec["managedBy"], "spec.managedBy", errs);
    let elastic = new_spec["completionMode"] == "Indexed"
        && new_spec["completions"] == new_spec["parallelism"]
        && old_spec["completions"] == old_spec["parallelism"];
    if !elastic {
        immutable(&old_spec["completions"], &new_spec["completions"], "spec.completions", errs);
    }
    // A suspended job that never started may change where its pods are scheduled.
    let mut old_template = old_spec["template"].clone();
    if old_spec["suspend"] == true && old["status"]["startTime"].is_null() {
        let new_template = &new_spec["template"];
        for field in ["nodeSelector", "tolerations", "affinity", "schedulingGates"] {
            old_template["spec"][field] = new_template["spec"][field].clone();
        }
        for field in ["labels", "annotations"] {
            old_template["metadata"][field] = new_template["metadata"][field].clone();
        }
    }
    immutable(&old_template, &new_spec["template"], "spec.template", errs);
}

/// Checks a standard five-field cron schedule or a predefined `@…` one, worded like the
/// cron parser upstream uses.
fn cron_schedule(schedule: &str) -> Result<(), String> {
    if let Some(descriptor) = schedule.strip_prefix('@') {
        return match descriptor {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            d if d.starts_with("every ") => Ok(()),
            _ => Err(format!("unrecognized descriptor: {schedule}")),
        };
    }
    let fields: Vec<&str> = schedule.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] =
        &["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(u32, u32, &[&str], u32); 5] =
        [(0, 59, &[], 0), (0, 23, &[], 0), (1, 31, &[], 0), (1, 12, MONTHS, 1), (0, 7, DAYS, 0)];
    for (field, (min, max, names, first)) in fields.iter().zip(bounds) {
        for part in field.split(',') {
            cron_range(part, min, max, names, first)?;
        }
    }
    Ok(())
}

fn cron_range(part: &str, min: u32, max: u32, names: &[&str], first: u32) -> Result<(), String> {
    let (range, step) = match part.split_once('/') {
        Some((range, step)) => (range, Some(step)),
        None => (part, None),
    };
    let number = |text: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(text)) {
            return Ok(i as u32 + first);
        }
        text.parse().map_err(|_| {
            format!(
                "failed to parse int from {text}: strconv.Atoi: parsing {text:?}: invalid syntax"
            )
        })
    };
    let (start, end) = match range {
        "*" | "?" => (min, max),
        _ => match range.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let n = number(range)?;
                (n, if step.is_some() { max } else { n })
            }
        },
    };
    if start < min {
        return Err(format!("beginning of range ({start}) below minimum ({min}): {part}"));
    }
    if end > max {
        return Err(format!("end of range ({end}) above maximum ({max}): {part}"));
    }
    if start > end {
        return Err(format!("beginning of range ({start}) beyond end of range ({end}): {part}"));
    }
    if let Some(step) = step {
        let step = number(step)?;
        if step == 0 {
            return Err(format!("step of range should be a positive number: {part}"));
        }
    }
    Ok(())
}
