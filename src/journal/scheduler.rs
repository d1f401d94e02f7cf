//! `--shard auto/N`: shard K taken from the variable a batch scheduler gives each task, so
//! every task of a Slurm job array or a Kubernetes Indexed Job runs the same command line.
//!
//! - Slurm job array: `SLURM_ARRAY_TASK_ID`, offset by `SLURM_ARRAY_TASK_MIN` and divided by
//!   `SLURM_ARRAY_TASK_STEP` (arrays may start at 0, 1 or anywhere, and step), so
//!   `--array=1-8`, `--array=0-7` and `--array=10-80:10` all give K = 1..8. Where Slurm also
//!   sets `SLURM_ARRAY_TASK_COUNT` or `SLURM_ARRAY_TASK_MAX`, the array must hold exactly N
//!   tasks: an array of another size, or a list with gaps (`--array=1,2,5`), is refused
//!   rather than leaving shards uncomputed or computed twice.
//! - Kubernetes Indexed Job: `JOB_COMPLETION_INDEX`, 0-based (K = index + 1), below N.
//!
//! Neither variable set, both set, a value that is not a number or out of range: refused
//! with the variable named. GitHub Actions has no such variable in the environment: a
//! matrix passes K itself (`--shard ${{ matrix.k }}/N`).

use std::fmt;
use std::str::FromStr;

use super::Shard;

/// The Slurm job array task index.
pub const SLURM_TASK: &str = "SLURM_ARRAY_TASK_ID";
/// The Kubernetes Indexed Job pod index (0-based).
pub const K8S_INDEX: &str = "JOB_COMPLETION_INDEX";

/// The `--shard` flag as given: `K/N`, or `auto/N` (K from the scheduler's variable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardArg {
    /// `K/N`.
    Given(Shard),
    /// `auto/N`: K from [`SLURM_TASK`] or [`K8S_INDEX`].
    FromScheduler {
        /// N, the shards in all.
        count: usize,
    },
}

impl FromStr for ShardArg {
    type Err = String;

    fn from_str(s: &str) -> Result<ShardArg, String> {
        if let Some(n) = s.strip_prefix("auto/") {
            return match n.trim().parse::<usize>() {
                Ok(count) if count > 0 => {
                    super::shard::check_count(count).map_err(|why| format!("'{s}': {why}"))?;
                    Ok(ShardArg::FromScheduler { count })
                }
                _ => Err(format!("'{s}': auto/N needs N >= 1 shards (e.g. auto/4)")),
            };
        }
        s.parse::<Shard>().map(ShardArg::Given).map_err(|e| match e.ends_with("(e.g. 2/4)") {
            true => format!("{e}, or auto/N (K from {SLURM_TASK} or {K8S_INDEX}, the scheduler's task index)"),
            false => e,
        })
    }
}

impl fmt::Display for ShardArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardArg::Given(s) => s.fmt(f),
            ShardArg::FromScheduler { count } => write!(f, "auto/{count}"),
        }
    }
}

/// A resolved `--shard`, and where K came from (`None` when given as `K/N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The shard this process computes.
    pub shard: Shard,
    /// How K was read, for the log (e.g. `SLURM_ARRAY_TASK_ID=3 in array 1-8`).
    pub from: Option<String>,
}

impl ShardArg {
    /// The shard this process computes, K read from `env` where the flag says `auto/N`.
    /// The error names the variable and says why it cannot be used.
    pub fn resolve(self, env: impl Fn(&str) -> Option<String>) -> Result<Resolved, String> {
        let count = match self {
            ShardArg::Given(shard) => return Ok(Resolved { shard, from: None }),
            ShardArg::FromScheduler { count } => count,
        };
        let (slurm, k8s) = (env(SLURM_TASK), env(K8S_INDEX));
        let (k, from) = match (slurm, k8s) {
            (Some(id), None) => slurm_index(&id, count, &env)?,
            (None, Some(index)) => {
                let i = number(K8S_INDEX, &index)?;
                if i >= count as u64 {
                    return Err(format!(
                        "{K8S_INDEX}={i} is not below {count} (0-based): the Indexed Job has more completions than --shard auto/{count}"
                    ));
                }
                (i as usize + 1, format!("{K8S_INDEX}={i}"))
            }
            (Some(_), Some(_)) => {
                return Err(format!(
                    "auto/{count}: both {SLURM_TASK} and {K8S_INDEX} are set, so the task index is ambiguous: give --shard K/{count}"
                ))
            }
            (None, None) => {
                return Err(format!(
                    "auto/{count}: neither {SLURM_TASK} (Slurm job array) nor {K8S_INDEX} (Kubernetes Indexed Job) is set: run inside one, or give --shard K/{count}"
                ))
            }
        };
        Ok(Resolved { shard: Shard { index: k, count }, from: Some(from) })
    }
}

/// A non-negative integer from variable `name`.
fn number(name: &str, value: &str) -> Result<u64, String> {
    value.trim().parse::<u64>().map_err(|_| format!("{name}='{value}' is not a non-negative integer"))
}

/// K (1-based) of Slurm task `id` in an array of `count` tasks, and how it was read.
fn slurm_index(id: &str, count: usize, env: &impl Fn(&str) -> Option<String>) -> Result<(usize, String), String> {
    let id = number(SLURM_TASK, id)?;
    let read = |name: &str| env(name).map(|v| number(name, &v)).transpose();
    let min = read("SLURM_ARRAY_TASK_MIN")?.unwrap_or(1);
    let step = read("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1);
    let (tasks, max) = (read("SLURM_ARRAY_TASK_COUNT")?, read("SLURM_ARRAY_TASK_MAX")?);
    if step == 0 {
        return Err("SLURM_ARRAY_TASK_STEP=0 is not a step".into());
    }
    let array = match max {
        Some(max) if step == 1 => format!("array {min}-{max}"),
        Some(max) => format!("array {min}-{max}:{step}"),
        None => format!("array from {min}"),
    };
    if let Some(tasks) = tasks {
        if tasks != count as u64 {
            return Err(format!(
                "SLURM_ARRAY_TASK_COUNT={tasks}: the job array has {tasks} tasks but --shard auto/{count} asks for {count} shards (sbatch --array with {count} indices, e.g. --array=1-{count})"
            ));
        }
    }
    if let Some(max) = max {
        let span = max.checked_sub(min).map(|d| (d / step + 1, d % step));
        if span != Some((count as u64, 0)) {
            return Err(format!(
                "{array} (SLURM_ARRAY_TASK_MIN/MAX/STEP) is not a range of {count} evenly stepped indices: submit --array=1-{count} for --shard auto/{count}"
            ));
        }
    }
    let offset = id.checked_sub(min).filter(|d| d % step == 0).map(|d| d / step);
    match offset {
        Some(k) if k < count as u64 => Ok((k as usize + 1, format!("{SLURM_TASK}={id} in {array}"))),
        _ => Err(format!(
            "{SLURM_TASK}={id} is not one of the {count} indices of the {array} (SLURM_ARRAY_TASK_MIN={min}, SLURM_ARRAY_TASK_STEP={step})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_string())
    }

    fn k(arg: &str, vars: &[(&str, &str)]) -> Result<usize, String> {
        arg.parse::<ShardArg>()?.resolve(env(vars)).map(|r| r.shard.index)
    }

    #[test]
    fn parse() {
        assert_eq!("2/4".parse::<ShardArg>(), Ok(ShardArg::Given(Shard { index: 2, count: 4 })));
        assert_eq!("auto/4".parse::<ShardArg>(), Ok(ShardArg::FromScheduler { count: 4 }));
        for bad in ["auto/0", "auto/x", "auto", "auto/", "0/3", "x/y"] {
            assert!(bad.parse::<ShardArg>().is_err(), "{bad}");
        }
        assert!("5/3".parse::<ShardArg>().unwrap_err().contains("is not K/N"));
        assert_eq!("auto/3".parse::<ShardArg>().unwrap().to_string(), "auto/3");
    }

    #[test]
    fn given_k_ignores_the_environment() {
        assert_eq!(k("2/3", &[(SLURM_TASK, "7"), (K8S_INDEX, "0")]), Ok(2));
    }

    #[test]
    fn slurm_arrays_starting_anywhere_with_steps() {
        // --array=1-3: ids 1, 2, 3 are shards 1, 2, 3.
        let one = |id| [(SLURM_TASK, id), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_MAX", "3")];
        assert_eq!((k("auto/3", &one("1")), k("auto/3", &one("3"))), (Ok(1), Ok(3)));
        // --array=0-2: id 0 is shard 1.
        let zero = |id| [(SLURM_TASK, id), ("SLURM_ARRAY_TASK_MIN", "0"), ("SLURM_ARRAY_TASK_COUNT", "3")];
        assert_eq!((k("auto/3", &zero("0")), k("auto/3", &zero("2"))), (Ok(1), Ok(3)));
        // --array=10-30:10: id 20 is shard 2.
        let stepped = [
            (SLURM_TASK, "20"),
            ("SLURM_ARRAY_TASK_MIN", "10"),
            ("SLURM_ARRAY_TASK_MAX", "30"),
            ("SLURM_ARRAY_TASK_STEP", "10"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ];
        assert_eq!(k("auto/3", &stepped), Ok(2));
        // Only the id (MIN unset): taken as 1-based.
        assert_eq!(k("auto/3", &[(SLURM_TASK, "3")]), Ok(3));
        let r = "auto/3".parse::<ShardArg>().unwrap().resolve(env(&one("2"))).unwrap();
        assert_eq!(r.from.as_deref(), Some("SLURM_ARRAY_TASK_ID=2 in array 1-3"));
    }

    #[test]
    fn slurm_arrays_of_another_size_or_with_gaps_are_refused() {
        let said = |arg: &str, vars: &[(&str, &str)], says: &str| {
            let e = k(arg, vars).unwrap_err();
            assert!(e.contains(says), "{e}");
        };
        // --array=1-8 for 4 shards.
        said("auto/4", &[(SLURM_TASK, "2"), ("SLURM_ARRAY_TASK_COUNT", "8")], "has 8 tasks but --shard auto/4");
        said("auto/4", &[(SLURM_TASK, "2"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_MAX", "8")], "array 1-8");
        // --array=1,2,5: three tasks, but not a range of three.
        let gaps = [
            (SLURM_TASK, "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ];
        said("auto/3", &gaps, "not a range of 3 evenly stepped indices");
        // An id outside the array, or off its step; non-numbers; a zero step.
        said("auto/3", &[(SLURM_TASK, "0"), ("SLURM_ARRAY_TASK_MIN", "1")], "SLURM_ARRAY_TASK_ID=0 is not one of");
        said("auto/3", &[(SLURM_TASK, "4"), ("SLURM_ARRAY_TASK_MIN", "1")], "SLURM_ARRAY_TASK_ID=4 is not one of");
        said("auto/3", &[(SLURM_TASK, "2"), ("SLURM_ARRAY_TASK_STEP", "2")], "SLURM_ARRAY_TASK_STEP=2");
        // --array=1-5:2 (MIN unset): id 3 is shard 2.
        assert_eq!(k("auto/3", &[(SLURM_TASK, "3"), ("SLURM_ARRAY_TASK_STEP", "2")]), Ok(2));
        said("auto/3", &[(SLURM_TASK, "two")], "SLURM_ARRAY_TASK_ID='two' is not a non-negative integer");
        said("auto/3", &[(SLURM_TASK, "1"), ("SLURM_ARRAY_TASK_MIN", "-1")], "SLURM_ARRAY_TASK_MIN='-1'");
        said("auto/3", &[(SLURM_TASK, "1"), ("SLURM_ARRAY_TASK_STEP", "0")], "STEP=0");
    }

    #[test]
    fn kubernetes_index_is_zero_based() {
        assert_eq!(k("auto/4", &[(K8S_INDEX, "0")]), Ok(1));
        assert_eq!(k("auto/4", &[(K8S_INDEX, "3")]), Ok(4));
        let e = k("auto/4", &[(K8S_INDEX, "4")]).unwrap_err();
        assert!(e.contains("JOB_COMPLETION_INDEX=4 is not below 4"), "{e}");
        assert!(k("auto/4", &[(K8S_INDEX, "")]).unwrap_err().contains("JOB_COMPLETION_INDEX=''"));
    }

    #[test]
    fn no_scheduler_or_two_are_refused() {
        let none = k("auto/2", &[]).unwrap_err();
        assert!(none.contains("neither SLURM_ARRAY_TASK_ID") && none.contains("--shard K/2"), "{none}");
        let both = k("auto/2", &[(SLURM_TASK, "1"), (K8S_INDEX, "0")]).unwrap_err();
        assert!(both.contains("ambiguous"), "{both}");
    }
}
