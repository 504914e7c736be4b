//! Reading a product's state back: the view (one script on one Redis, the product's
//! slot plus each bucket on a cluster) and the parsing of hold records.

use flash_sale_domain::UserId;
use flash_sale_domain::allocation::Allocation;
use flash_sale_domain::gateway::{
    GatewayError, Hold, HoldKind, LedgerView, ReturnInProgress, age_ms,
};
use flash_sale_domain::product::ProductId;
use redis::Value;

use super::{RedisStockLedger, VIEW, VIEW_META, unexpected};

/// An integer reply element (0 when it is something else).
pub(super) fn int(value: &Value) -> i64 {
    match value {
        Value::Int(i) => *i,
        Value::BulkString(bytes) => std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        _ => 0,
    }
}

/// A text reply element (empty when it is something else).
pub(super) fn text(value: &Value) -> String {
    match value {
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        _ => String::new(),
    }
}

fn ints(value: &Value) -> Vec<i64> {
    match value {
        Value::Array(items) => items.iter().map(int).collect(),
        _ => Vec::new(),
    }
}

fn pairs(value: &Value) -> Vec<(String, String)> {
    match value {
        Value::Array(items) => items
            .chunks(2)
            .filter_map(|pair| match pair {
                [k, v] => Some((text(k), text(v))),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A hold's record, `kind|qty|b:u,b:u|ts_ms|user`. A cluster reservation that has not
/// noted all its parts yet shows the parts so far (bucket 0 when there is none): it is
/// in progress all the same.
pub(super) fn hold(token: &str, record: &str, now_ms: i64) -> Option<Hold> {
    let mut fields = record.splitn(5, '|');
    let kind = HoldKind::from_letter(fields.next()?)?;
    let quantity: u32 = fields.next()?.parse().ok()?;
    let allocation =
        Allocation::parse(fields.next()?).unwrap_or_else(|| Allocation::single(0, quantity));
    let ts: i64 = fields.next()?.parse().ok()?;
    let user_id = UserId::parse(fields.next()?).ok()?;
    Some(Hold {
        token: token.to_owned(),
        kind,
        user_id,
        allocation,
        age: age_ms(now_ms, ts),
    })
}

fn returns(list: Vec<(String, String)>, now_ms: i64) -> Vec<ReturnInProgress> {
    list.into_iter()
        .map(|(token, ts)| ReturnInProgress {
            token,
            age: age_ms(now_ms, ts.parse().unwrap_or(now_ms)),
        })
        .collect()
}

fn holds(list: Vec<(String, String)>, now_ms: i64) -> Vec<Hold> {
    list.into_iter()
        .filter_map(|(token, record)| hold(&token, &record, now_ms))
        .collect()
}

impl RedisStockLedger {
    pub(super) async fn view_single(
        &self,
        product_id: ProductId,
    ) -> Result<Option<LedgerView>, GatewayError> {
        self.counts.invalidate(&product_id);
        let keys = self.keys(product_id);
        for _ in 0..3 {
            let Some(count) = self.bucket_count(product_id).await? else {
                return Ok(None);
            };
            let mut invocation = VIEW.prepare_invoke();
            invocation.key(&keys.meta).key(&keys.res).key(&keys.ret);
            for b in 0..count {
                invocation.key(keys.bucket(b));
            }
            let mut conn = self.redis.conn();
            let answer: Vec<Value> = self
                .redis
                .run("view", invocation.invoke_async(&mut conn))
                .await?;
            match answer.as_slice() {
                [code] if int(code) == -1 => return Ok(None),
                [code, n] if int(code) == -2 => {
                    self.counts
                        .insert(product_id, u32::try_from(int(n)).unwrap_or(1));
                }
                [now, susp, avail, inflight, res, ret] => {
                    let now = int(now);
                    return Ok(Some(LedgerView {
                        available: ints(avail),
                        in_flight: ints(inflight),
                        holds: holds(pairs(res), now),
                        returns: returns(pairs(ret), now),
                        suspended: int(susp) > now,
                    }));
                }
                other => {
                    return Err(unexpected("view", other.first().map_or(-99, int)));
                }
            }
        }
        Err(GatewayError::Unavailable(
            "the product's layout kept changing".into(),
        ))
    }

    pub(super) async fn view_split(
        &self,
        product_id: ProductId,
    ) -> Result<Option<LedgerView>, GatewayError> {
        self.counts.invalidate(&product_id);
        let keys = self.keys(product_id);
        let mut conn = self.redis.conn();
        let answer: Vec<Value> = self
            .redis
            .run(
                "view meta",
                VIEW_META
                    .key(&keys.meta)
                    .key(&keys.res)
                    .key(&keys.ret)
                    .invoke_async(&mut conn),
            )
            .await?;
        let [now, susp, count, res, ret] = answer.as_slice() else {
            return match answer.first().map(int) {
                Some(-1) => Ok(None),
                code => Err(unexpected("view meta", code.unwrap_or(-99))),
            };
        };
        let now = int(now);
        let count = u32::try_from(int(count)).unwrap_or(0);
        let mut view = LedgerView {
            available: Vec::with_capacity(count as usize),
            in_flight: Vec::with_capacity(count as usize),
            holds: holds(pairs(res), now),
            returns: returns(pairs(ret), now),
            suspended: int(susp) > now,
        };
        for b in 0..count {
            let (avail, inflight): (Option<i64>, Option<i64>) = self
                .redis
                .run(
                    "hmget",
                    redis::cmd("HMGET")
                        .arg(keys.bucket(b))
                        .arg("avail")
                        .arg("inflight")
                        .query_async(&mut conn),
                )
                .await?;
            view.available.push(avail.unwrap_or(0));
            view.in_flight.push(inflight.unwrap_or(0));
        }
        Ok(Some(view))
    }
}
