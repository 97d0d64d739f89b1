//! The stats fold: the ledger's changes (a delivery item's state before and after a write),
//! folded into one change of the totals per counter, off the delivery path.
//!
//! Each finished delivery reaches its final state through exactly one conditional write,
//! so each counts once however often SQS hands its message out; a reopen (redrive,
//! recover) takes its contribution back out, and the delivery counts again when it ends.

use std::collections::BTreeMap;

use crate::ids::{SubscriberId, TenantId};
use crate::model::{DeliveryState, DeliveryStats};
use crate::ports::StatsChange;
use crate::series::AttemptSample;

/// One write of a delivery item: its state and attempts before (`None`: it was new) and
/// after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerChange {
    pub tenant: TenantId,
    pub subscriber: SubscriberId,
    pub before: Option<(DeliveryState, u32)>,
    pub after: Option<(DeliveryState, u32)>,
    /// The attempt this write recorded, if it recorded one (not a status set without one).
    pub attempt: Option<AttemptSample>,
}

impl LedgerChange {
    /// What this write changes in the totals.
    pub fn delta(&self) -> DeliveryStats {
        let of = |s: Option<(DeliveryState, u32)>| {
            s.map(|(state, attempts)| DeliveryStats::of(state, attempts))
                .unwrap_or_default()
        };
        of(self.after).minus(of(self.before))
    }
}

/// The attempts a batch recorded, for [`crate::series::fold`].
pub fn attempts(changes: &[LedgerChange]) -> Vec<(TenantId, SubscriberId, AttemptSample)> {
    changes
        .iter()
        .filter_map(|c| {
            c.attempt
                .map(|a| (c.tenant.clone(), c.subscriber.clone(), a))
        })
        .collect()
}

/// One change per counter touched (the tenant's and each subscriber's), nothing for
/// changes that move no total (a retry, a pending reopen of a pending delivery).
pub fn fold(changes: &[LedgerChange]) -> Vec<StatsChange> {
    let mut totals: BTreeMap<(TenantId, Option<SubscriberId>), DeliveryStats> = BTreeMap::new();
    for change in changes {
        let delta = change.delta();
        if delta.is_zero() {
            continue;
        }
        for key in [
            (change.tenant.clone(), None),
            (change.tenant.clone(), Some(change.subscriber.clone())),
        ] {
            let t = totals.entry(key).or_default();
            *t = t.plus(delta);
        }
    }
    totals
        .into_iter()
        .filter(|(_, d)| !d.is_zero())
        .map(|((tenant, subscriber), delta)| StatsChange {
            tenant,
            subscriber,
            delta,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeliveryState::*;

    fn change(
        tenant: &TenantId,
        sub: &SubscriberId,
        before: Option<(DeliveryState, u32)>,
        after: Option<(DeliveryState, u32)>,
    ) -> LedgerChange {
        LedgerChange {
            tenant: tenant.clone(),
            subscriber: sub.clone(),
            before,
            after,
            attempt: None,
        }
    }

    #[test]
    fn a_batch_folds_into_one_change_per_counter() {
        let t = TenantId::default_tenant();
        let (a, b) = (SubscriberId::new(), SubscriberId::new());
        let folded = fold(&[
            change(&t, &a, None, Some((Delivered, 1))),
            change(&t, &a, None, Some((Retrying, 1))),
            change(&t, &a, Some((Retrying, 1)), Some((Delivered, 2))),
            change(&t, &b, None, Some((Failed, 3))),
            // A reopened failure leaves the totals, and its later success comes back in.
            change(&t, &b, Some((Failed, 3)), Some((Pending, 3))),
            change(&t, &b, Some((Pending, 3)), Some((Delivered, 4))),
        ]);
        let get = |s: Option<&SubscriberId>| {
            folded
                .iter()
                .find(|c| c.subscriber.as_ref() == s)
                .map(|c| c.delta)
                .unwrap()
        };
        assert_eq!(folded.len(), 3);
        let total = get(None);
        assert_eq!((total.success, total.failure, total.attempts), (3, 0, 7));
        let of_a = get(Some(&a));
        assert_eq!((of_a.success, of_a.failure, of_a.attempts), (2, 0, 3));
        let of_b = get(Some(&b));
        assert_eq!((of_b.success, of_b.failure, of_b.attempts), (1, 0, 4));
    }

    #[test]
    fn changes_that_move_no_total_fold_to_nothing() {
        let t = TenantId::default_tenant();
        let a = SubscriberId::new();
        assert!(
            fold(&[
                change(&t, &a, None, Some((Retrying, 1))),
                change(&t, &a, Some((Retrying, 1)), Some((Retrying, 2))),
                change(&t, &a, None, Some((Pending, 0))),
            ])
            .is_empty()
        );
    }
}
