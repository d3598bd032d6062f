//! Rolling update step math, pure: how far the new ReplicaSet may grow (maxSurge) and how far
//! the old ones may shrink (maxUnavailable), as upstream's rolling.go computes them.

/// A ReplicaSet's size and available pods.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counts {
    pub replicas: i32,
    pub available: i32,
}

/// The new ReplicaSet's size this step: grow towards `desired` while all ReplicaSets together
/// stay within `desired + surge` (upstream's NewRSNewReplicas).
pub fn new_rs_target(desired: i32, surge: i32, all_replicas: i32, new_replicas: i32) -> i32 {
    if new_replicas >= desired {
        return desired;
    }
    let max_total = desired + surge;
    if all_replicas >= max_total {
        return new_replicas;
    }
    new_replicas + (max_total - all_replicas).min(desired - new_replicas)
}

/// The old ReplicaSets' sizes (oldest first) after this step's scale-down: first their unhealthy
/// pods, then available ones, never taking availability below `desired - max_unavailable`.
pub fn old_rs_targets(desired: i32, max_unavailable: i32, new: Counts, old: &[Counts]) -> Vec<i32> {
    let mut targets: Vec<i32> = old.iter().map(|c| c.replicas).collect();
    let old_total: i32 = targets.iter().sum();
    if old_total == 0 {
        return targets;
    }
    let all = new.replicas + old_total;
    let min_available = desired - max_unavailable;
    let new_unavailable = new.replicas - new.available;
    let max_scaled_down = all - min_available - new_unavailable;
    if max_scaled_down <= 0 {
        return targets;
    }
    let mut cleaned = 0;
    for (target, counts) in targets.iter_mut().zip(old) {
        if cleaned >= max_scaled_down {
            break;
        }
        let unhealthy = *target - counts.available;
        if *target == 0 || unhealthy <= 0 {
            continue;
        }
        let down = (max_scaled_down - cleaned).min(unhealthy);
        *target -= down;
        cleaned += down;
    }
    let available: i32 = new.available + old.iter().map(|c| c.available).sum::<i32>();
    if available <= min_available {
        return targets;
    }
    let budget = available - min_available;
    let mut scaled = 0;
    for target in targets.iter_mut() {
        if scaled >= budget {
            break;
        }
        if *target == 0 {
            continue;
        }
        let down = (*target).min(budget - scaled);
        *target -= down;
        scaled += down;
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(replicas: i32, available: i32) -> Counts {
        Counts { replicas, available }
    }

    #[test]
    fn new_replicaset_grows_within_max_surge() {
        // (desired, surge, all, new) -> target
        let cases = [
            ((10, 3, 10, 0), 3),
            ((10, 3, 13, 3), 3),
            ((10, 3, 11, 3), 5),
            ((10, 0, 9, 0), 1),
            ((10, 3, 3, 0), 10),
            ((3, 1, 3, 3), 3),
            ((3, 1, 5, 5), 3),
            ((1, 0, 0, 0), 1),
        ];
        for ((desired, surge, all, new), want) in cases {
            assert_eq!(
                new_rs_target(desired, surge, all, new),
                want,
                "{desired} {surge} {all} {new}"
            );
        }
    }

    #[test]
    fn old_replicasets_shrink_within_max_unavailable() {
        // (desired, maxUnavailable, new, old) -> old targets
        type Case = ((i32, i32, Counts, Vec<Counts>), Vec<i32>);
        let cases: [Case; 7] = [
            // 25%/25% of 4 after the surge pod came up unavailable: one old pod may go.
            ((4, 1, c(1, 0), vec![c(4, 4)]), vec![3]),
            // The new pod is available: availability 5 > 3, two more may go.
            ((4, 1, c(1, 1), vec![c(4, 4)]), vec![2]),
            // maxUnavailable 0: nothing goes until new pods are available.
            ((3, 0, c(1, 0), vec![c(3, 3)]), vec![3]),
            ((3, 0, c(1, 1), vec![c(3, 3)]), vec![2]),
            // Unhealthy old pods go first, even when none could go otherwise.
            ((3, 0, c(3, 3), vec![c(2, 0)]), vec![0]),
            // Oldest first across several old ReplicaSets.
            ((4, 2, c(0, 0), vec![c(2, 2), c(2, 2)]), vec![0, 2]),
            ((5, 1, c(5, 5), vec![c(0, 0)]), vec![0]),
        ];
        for ((desired, unavailable, new, old), want) in cases {
            assert_eq!(old_rs_targets(desired, unavailable, new, &old), want, "{new:?} {old:?}");
        }
    }
}
