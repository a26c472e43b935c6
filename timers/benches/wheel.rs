//! The wheel side by side with a lazy-deletion binary heap and tokio-util's `DelayQueue`.
//!
//! Run with `cargo bench -p evdrive-timers`. Every workload drives all three the same way: the same
//! seeded deadlines (in 1 ms ticks), the same operations in the same order, and the same clock
//! walk, one `poll` sweep at every tick from 1 to the last deadline, draining everything due
//! at each tick, as a reactor that wakes every millisecond would. Each structure is created
//! with room for all its timers, so growth is not measured.
//!
//! `DelayQueue` has no `poll(now)`: it reads tokio's clock and needs a runtime. It runs in a
//! current-thread runtime whose clock is paused; each tick is `tokio::time::advance(1 ms)`
//! followed by draining `poll_expired`. That walk has a cost of its own (a runtime turn per
//! tick), measured by `delay_queue_empty_ticks`, which walks the same 60,000 ticks with an
//! empty queue; subtract it to see the queue alone.
//!
//! Times are the bench thread's CPU time (`/proc/thread-self/schedstat`), not wall time: the
//! machine has 2 cores shared with other builds and benchmarks, and CPU time leaves out the
//! moments another process held the core. Everything measured runs on the bench thread,
//! `DelayQueue` and its runtime included.
//!
//! Workloads:
//! 1. `insert_then_expire`: 1,000,000 timers with deadlines uniform over 60,000 ticks, then
//!    the walk through all of them (2 M operations: insert and expiry).
//! 2. `idle_reset`: 100,000 idle timeouts of 30 s (plus up to 1 s of jitter), each reset 10
//!    times, at ticks 100, 200, …, 1,000, in a shuffled order, before the walk fires them all
//!    (1.2 M operations: insert, reset and expiry).
//! 3. `insert_cancel`: 1,000,000 timers as in 1, then 90 % of them cancelled in a shuffled
//!    order, then the walk through the rest (2 M operations: insert, cancel and expiry).
#![forbid(unsafe_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::poll_fn;
use std::hint::black_box;
use std::task::Poll;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter};
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use evdrive_timers::{Tick, Wheel};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use tokio::runtime::Runtime;
use tokio::time::Instant;
use tokio_util::time::DelayQueue;

/// Timers in workloads 1 and 3.
const MANY: usize = 1_000_000;
/// Span of the deadlines in workloads 1 and 3: 60 s of 1 ms ticks.
const SPAN: Tick = 60_000;
/// Timers in workload 2.
const IDLE: usize = 100_000;
/// Resets of each timer in workload 2.
const RESETS: u64 = 10;
/// The idle timeout of workload 2.
const TIMEOUT: Tick = 30_000;

/// The timer operations the workloads use, implemented by each contender.
trait Timers {
    type Key: Copy;
    fn insert(&mut self, deadline: Tick, value: usize) -> Self::Key;
    fn reset(&mut self, key: Self::Key, deadline: Tick);
    fn cancel(&mut self, key: Self::Key) -> Option<usize>;
    /// Hands out everything due at `now`; returns how many.
    fn expire(&mut self, now: Tick) -> usize;
}

impl Timers for Wheel<usize> {
    type Key = evdrive_timers::TimerKey;
    fn insert(&mut self, deadline: Tick, value: usize) -> Self::Key {
        Wheel::insert(self, deadline, value)
    }
    fn reset(&mut self, key: Self::Key, deadline: Tick) {
        Wheel::reset(self, key, deadline);
    }
    fn cancel(&mut self, key: Self::Key) -> Option<usize> {
        Wheel::cancel(self, key)
    }
    fn expire(&mut self, now: Tick) -> usize {
        let mut fired = 0;
        while let Some((_, value)) = self.poll(now) {
            black_box(value);
            fired += 1;
        }
        fired
    }
}

/// A binary heap of `(deadline, arming)` with lazy deletion: cancel and reset leave the old
/// heap item in place, and popping skips items whose arming no longer matches their slot.
struct HeapTimers {
    heap: BinaryHeap<Reverse<(Tick, u64, u32)>>,
    slots: Vec<HeapSlot>,
    free: Vec<u32>,
    armings: u64,
}

/// One timer of the heap: the arming its live heap item carries, and the key's generation.
struct HeapSlot {
    value: Option<usize>,
    arming: u64,
    generation: u32,
}

impl HeapTimers {
    fn with_capacity(capacity: usize) -> Self {
        HeapTimers {
            heap: BinaryHeap::with_capacity(capacity),
            slots: Vec::with_capacity(capacity),
            free: Vec::new(),
            armings: 0,
        }
    }

    fn live(&self, (index, generation): (u32, u32)) -> bool {
        let slot = &self.slots[index as usize];
        slot.generation == generation && slot.value.is_some()
    }
}

impl Timers for HeapTimers {
    type Key = (u32, u32);
    fn insert(&mut self, deadline: Tick, value: usize) -> Self::Key {
        self.armings += 1;
        let index = match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.value = Some(value);
                slot.arming = self.armings;
                index
            }
            None => {
                let slot = HeapSlot {
                    value: Some(value),
                    arming: self.armings,
                    generation: 0,
                };
                self.slots.push(slot);
                self.slots.len() as u32 - 1
            }
        };
        self.heap.push(Reverse((deadline, self.armings, index)));
        (index, self.slots[index as usize].generation)
    }
    fn reset(&mut self, key: Self::Key, deadline: Tick) {
        if self.live(key) {
            self.armings += 1;
            self.slots[key.0 as usize].arming = self.armings;
            self.heap.push(Reverse((deadline, self.armings, key.0)));
        }
    }
    fn cancel(&mut self, key: Self::Key) -> Option<usize> {
        if !self.live(key) {
            return None;
        }
        let slot = &mut self.slots[key.0 as usize];
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(key.0);
        slot.value.take()
    }
    fn expire(&mut self, now: Tick) -> usize {
        let mut fired = 0;
        while let Some(&Reverse((deadline, arming, index))) = self.heap.peek() {
            if deadline > now {
                break;
            }
            self.heap.pop();
            let slot = &mut self.slots[index as usize];
            if slot.arming != arming || slot.value.is_none() {
                continue;
            }
            slot.generation = slot.generation.wrapping_add(1);
            black_box(slot.value.take());
            self.free.push(index);
            fired += 1;
        }
        fired
    }
}

/// `DelayQueue` on tokio's paused clock: `base` is tick 0, `now` the tick the clock stands at.
struct Delay<'rt> {
    runtime: &'rt Runtime,
    queue: DelayQueue<usize>,
    base: Instant,
    now: Tick,
}

impl<'rt> Delay<'rt> {
    fn with_capacity(runtime: &'rt Runtime, capacity: usize) -> Self {
        // DelayQueue reads the clock when created, so it needs the runtime's context.
        let _guard = runtime.enter();
        Delay {
            runtime,
            queue: DelayQueue::with_capacity(capacity),
            base: Instant::now(),
            now: 0,
        }
    }

    fn at(&self, tick: Tick) -> Instant {
        self.base + Duration::from_millis(tick)
    }
}

impl Timers for Delay<'_> {
    type Key = tokio_util::time::delay_queue::Key;
    fn insert(&mut self, deadline: Tick, value: usize) -> Self::Key {
        let _guard = self.runtime.enter();
        self.queue.insert_at(value, self.at(deadline))
    }
    fn reset(&mut self, key: Self::Key, deadline: Tick) {
        let _guard = self.runtime.enter();
        let when = self.at(deadline);
        self.queue.reset_at(&key, when);
    }
    fn cancel(&mut self, key: Self::Key) -> Option<usize> {
        self.queue
            .try_remove(&key)
            .map(|expired| expired.into_inner())
    }
    fn expire(&mut self, now: Tick) -> usize {
        let (step, queue) = (now.saturating_sub(self.now), &mut self.queue);
        self.now = self.now.max(now);
        self.runtime.block_on(async move {
            if step > 0 {
                tokio::time::advance(Duration::from_millis(step)).await;
            }
            poll_fn(|cx| {
                let mut fired = 0;
                while let Poll::Ready(Some(expired)) = queue.poll_expired(cx) {
                    black_box(expired.into_inner());
                    fired += 1;
                }
                Poll::Ready(fired)
            })
            .await
        })
    }
}

/// Walks the clock one tick at a time from `from` to `to`, draining at each tick.
fn walk(timers: &mut impl Timers, from: Tick, to: Tick) -> usize {
    (from..=to).map(|now| timers.expire(now)).sum()
}

/// Workload 1: insert, then expire everything.
fn insert_then_expire(timers: &mut impl Timers, deadlines: &[Tick]) {
    for (i, &deadline) in deadlines.iter().enumerate() {
        timers.insert(deadline, i);
    }
    assert_eq!(walk(timers, 1, SPAN), deadlines.len());
}

/// Workload 2: insert idle timeouts, reset each of them `RESETS` times, then expire them.
fn idle_reset<X: Timers>(timers: &mut X, jitter: &[Tick], order: &[usize]) {
    let keys: Vec<X::Key> = jitter
        .iter()
        .enumerate()
        .map(|(i, &j)| timers.insert(TIMEOUT + j, i))
        .collect();
    let mut now = 0;
    for _ in 0..RESETS {
        now += 100;
        assert_eq!(timers.expire(now), 0);
        for &i in order {
            timers.reset(keys[i], now + TIMEOUT + jitter[i]);
        }
    }
    assert_eq!(walk(timers, now + 1, now + TIMEOUT + 1_000), jitter.len());
}

/// Workload 3: insert, cancel 90 %, then expire the rest.
fn insert_cancel<X: Timers>(timers: &mut X, deadlines: &[Tick], cancel: &[usize]) {
    let keys: Vec<X::Key> = deadlines
        .iter()
        .enumerate()
        .map(|(i, &d)| timers.insert(d, i))
        .collect();
    for &i in cancel {
        black_box(timers.cancel(keys[i]));
    }
    assert_eq!(walk(timers, 1, SPAN), deadlines.len() - cancel.len());
}

/// The calling thread's CPU time: the first field of `/proc/thread-self/schedstat`, the
/// nanoseconds it ran. The kernel brings the figure up to date at each scheduler tick (a few
/// milliseconds) and context switch, so a reading lags by less than one tick; both ends of a
/// sample lag alike, and a sample here lasts hundreds of milliseconds.
fn thread_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")
        .expect("reading /proc/thread-self/schedstat");
    let ns = stat
        .split_whitespace()
        .next()
        .and_then(|f| f.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("unexpected /proc/thread-self/schedstat: {stat:?}"));
    Duration::from_nanos(ns)
}

/// Criterion measurement of the bench thread's CPU time.
struct ThreadCpuTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;
    fn start(&self) -> Duration {
        thread_cpu_time()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time() - start
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        &Nanos
    }
}

/// Prints CPU times like criterion prints wall times.
struct Nanos;

impl ValueFormatter for Nanos {
    fn scale_values(&self, typical: f64, values: &mut [f64]) -> &'static str {
        let (factor, unit) = match typical {
            t if t < 1e3 => (1.0, "ns"),
            t if t < 1e6 => (1e-3, "µs"),
            t if t < 1e9 => (1e-6, "ms"),
            _ => (1e-9, "s"),
        };
        values.iter_mut().for_each(|v| *v *= factor);
        unit
    }
    fn scale_throughputs(
        &self,
        _typical: f64,
        throughput: &Throughput,
        values: &mut [f64],
    ) -> &'static str {
        let per_op = match *throughput {
            Throughput::Elements(n) | Throughput::Bytes(n) | Throughput::BytesDecimal(n) => n,
        };
        // Shown as CPU nanoseconds per operation, the figure BENCHMARKS.md reports.
        values.iter_mut().for_each(|v| *v /= per_op as f64);
        "ns/op"
    }
    fn scale_for_machines(&self, _values: &mut [f64]) -> &'static str {
        "ns"
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

fn benches(c: &mut Criterion<ThreadCpuTime>) {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let deadlines: Vec<Tick> = (0..MANY).map(|_| rng.random_range(1..=SPAN)).collect();
    let jitter: Vec<Tick> = (0..IDLE).map(|_| rng.random_range(0..1_000)).collect();
    let mut order: Vec<usize> = (0..IDLE).collect();
    order.shuffle(&mut rng);
    let mut cancel: Vec<usize> = (0..MANY).collect();
    cancel.shuffle(&mut rng);
    cancel.truncate(MANY * 9 / 10);
    let rt = runtime();

    let mut group = c.benchmark_group("insert_then_expire");
    group
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(2 * MANY as u64));
    group.bench_function("wheel", |b| {
        b.iter(|| insert_then_expire(&mut Wheel::with_capacity(MANY), &deadlines))
    });
    group.bench_function("heap", |b| {
        b.iter(|| insert_then_expire(&mut HeapTimers::with_capacity(MANY), &deadlines))
    });
    group.bench_function("delay_queue", |b| {
        b.iter(|| insert_then_expire(&mut Delay::with_capacity(&rt, MANY), &deadlines))
    });
    group.bench_function(BenchmarkId::new("delay_queue_empty_ticks", SPAN), |b| {
        b.iter(|| walk(&mut Delay::with_capacity(&rt, 0), 1, SPAN))
    });
    group.finish();

    let ops = IDLE as u64 * (RESETS + 2);
    let mut group = c.benchmark_group("idle_reset");
    group
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(ops));
    group.bench_function("wheel", |b| {
        b.iter(|| idle_reset(&mut Wheel::with_capacity(IDLE), &jitter, &order))
    });
    group.bench_function("heap", |b| {
        let capacity = IDLE * (RESETS as usize + 1);
        b.iter(|| idle_reset(&mut HeapTimers::with_capacity(capacity), &jitter, &order))
    });
    group.bench_function("delay_queue", |b| {
        b.iter(|| idle_reset(&mut Delay::with_capacity(&rt, IDLE), &jitter, &order))
    });
    group.finish();

    let mut group = c.benchmark_group("insert_cancel");
    group
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(2 * MANY as u64));
    group.bench_function("wheel", |b| {
        b.iter(|| insert_cancel(&mut Wheel::with_capacity(MANY), &deadlines, &cancel))
    });
    group.bench_function("heap", |b| {
        b.iter(|| insert_cancel(&mut HeapTimers::with_capacity(MANY), &deadlines, &cancel))
    });
    group.bench_function("delay_queue", |b| {
        b.iter(|| insert_cancel(&mut Delay::with_capacity(&rt, MANY), &deadlines, &cancel))
    });
    group.finish();
}

criterion_group! {
    name = wheel;
    config = Criterion::default()
        .with_measurement(ThreadCpuTime)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = benches
}
criterion_main!(wheel);
