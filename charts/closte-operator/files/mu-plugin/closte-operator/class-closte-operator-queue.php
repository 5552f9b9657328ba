<?php
/**
 * Writes to the sidecar that must not be lost: tried at once, else kept and
 * retried with backoff, within bounds.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Where the queue keeps its small state (the breaker); network options in
 * WordPress, an array in the unit tests.
 */
interface Closte_Operator_Store {

	/**
	 * Reads a value.
	 *
	 * @param string $key     Name.
	 * @param mixed  $fallback Returned when nothing is stored.
	 * @return mixed
	 */
	public function get( string $key, mixed $fallback = null ): mixed;

	/**
	 * Writes a value.
	 *
	 * @param string $key   Name.
	 * @param mixed  $value Value (arrays and scalars).
	 * @return void
	 */
	public function set( string $key, mixed $value ): void;
}

/**
 * Where the queue keeps its entries: one row per entry, so that writing one
 * entry costs the same whatever the queue holds, and concurrent requests
 * never overwrite each other's entries. Reads are fresh (never from a cache).
 * A table in WordPress, an array in the unit tests.
 *
 * Every waiting entry has a `version`, changed by every write; replace() and
 * remove() with a version act only on that version, so a request never
 * settles an entry that another request replaced meanwhile.
 */
interface Closte_Operator_Queue_Store {

	/**
	 * The waiting entries by key, oldest first, each with its `version`.
	 *
	 * @return array<string, array>
	 */
	public function waiting(): array;

	/**
	 * How many entries are waiting.
	 *
	 * @return int
	 */
	public function count(): int;

	/**
	 * Writes the entry of a key, replacing any (one row).
	 *
	 * @param string $key   Key.
	 * @param array  $entry Entry, without a version.
	 * @return void
	 */
	public function put( string $key, array $entry ): void;

	/**
	 * Replaces the entry of a key if it is still at `$version` (one row).
	 *
	 * @param string $key     Key.
	 * @param int    $version The version read.
	 * @param array  $entry   Entry, without a version.
	 * @return bool Whether it was replaced; false when another request replaced or removed it meanwhile.
	 */
	public function replace( string $key, int $version, array $entry ): bool;

	/**
	 * Removes the entry of a key; only at `$version` when one is given (one row).
	 *
	 * @param string   $key     Key.
	 * @param int|null $version The version read, or null for any.
	 * @return bool Whether an entry was removed.
	 */
	public function remove( string $key, ?int $version = null ): bool;

	/**
	 * Records a change given up, keeping the newest `$keep` of them.
	 *
	 * @param array $record The operation plus `time`, `error` and `attempts`.
	 * @param int   $keep   How many records to keep.
	 * @return void
	 */
	public function reject( array $record, int $keep ): void;

	/**
	 * The changes given up, newest first.
	 *
	 * @return array<int, array>
	 */
	public function rejected(): array;

	/**
	 * Forgets every change given up.
	 *
	 * @return int How many were forgotten.
	 */
	public function clear_rejected(): int;
}

/**
 * The write queue and the circuit breaker in front of the sidecar.
 *
 * An operation is an array: `put` (domain, site), `delete` (domain) or `site`
 * (site, domains: the whole set of one site). Operations on the same key (a
 * domain, or a site's set) replace each other: the newest wins, so a retry
 * never undoes a later change.
 *
 * A write that finds the sidecar unreachable opens the breaker for
 * BREAKER_SECONDS: writes submitted meanwhile go straight to the queue, so a
 * page never waits on a dead sidecar more than once. Retries ignore the
 * breaker; they are the probe that closes it.
 *
 * The queue is bounded: at most MAX_ENTRIES wait, an entry still failing
 * after MAX_AGE seconds is given up, and a conflict (409: the domain is held
 * by another site, or still being deleted) is retried CONFLICT_ATTEMPTS
 * times. A change given up is recorded as rejected with its reason; the
 * periodic whole-set sync writes WordPress's domains again anyway.
 */
final class Closte_Operator_Queue {

	const DOWN              = 'down';
	const BREAKER_SECONDS   = 30;
	const FIRST_DELAY       = 30;
	const MAX_DELAY         = 3600;
	const FAILURES_KEPT     = 20;
	const MAX_ENTRIES       = 1000;
	const MAX_AGE           = 604800; // 7 days.
	const CONFLICT_ATTEMPTS = 10;

	/**
	 * Returns the current Unix time.
	 *
	 * @var Closure
	 */
	private Closure $clock;

	/**
	 * Called with an entry's due time whenever one is written.
	 *
	 * @var Closure|null
	 */
	private ?Closure $on_change;

	/**
	 * How the last attempt() ended: 'done', 'queued' or 'dropped'.
	 *
	 * @var string
	 */
	private string $outcome = '';

	/**
	 * Constructor.
	 *
	 * @param Closte_Operator_Sidecar     $sidecar   The sidecar client.
	 * @param Closte_Operator_Store       $store     Where the breaker lives.
	 * @param Closte_Operator_Queue_Store $rows      Where the entries live.
	 * @param callable|null               $clock     Returns the Unix time; time() when null.
	 * @param callable|null               $on_change Receives the due time of each entry written.
	 */
	public function __construct(
		private Closte_Operator_Sidecar $sidecar,
		private Closte_Operator_Store $store,
		private Closte_Operator_Queue_Store $rows,
		?callable $clock = null,
		?callable $on_change = null
	) {
		$this->clock     = Closure::fromCallable( $clock ?? 'time' );
		$this->on_change = null === $on_change ? null : Closure::fromCallable( $on_change );
	}

	/**
	 * Operation: the domain exists, for this site when known.
	 *
	 * @param string   $domain  Domain.
	 * @param int|null $site_id Blog id.
	 * @return array
	 */
	public static function put( string $domain, ?int $site_id ): array {
		return array(
			'op'     => 'put',
			'domain' => Closte_Operator_Domains::normalize( $domain ),
			'site'   => $site_id,
		);
	}

	/**
	 * Operation: the domain no longer exists.
	 *
	 * @param string $domain Domain.
	 * @return array
	 */
	public static function delete( string $domain ): array {
		return array(
			'op'     => 'delete',
			'domain' => Closte_Operator_Domains::normalize( $domain ),
		);
	}

	/**
	 * Operation: these are all the domains of the site.
	 *
	 * @param int                $site_id Blog id.
	 * @param array<int, string> $domains Domains.
	 * @return array
	 */
	public static function site( int $site_id, array $domains ): array {
		return array(
			'op'      => 'site',
			'site'    => $site_id,
			'domains' => Closte_Operator_Domains::set( $domains ),
		);
	}

	/**
	 * What an operation replaces: its domain, or its site's set.
	 *
	 * @param array $op Operation.
	 * @return string
	 */
	public static function key( array $op ): string {
		return 'site' === $op['op'] ? 'site:' . (int) $op['site'] : 'domain:' . $op['domain'];
	}

	/**
	 * Tries an operation now (unless the breaker is open) and queues it if
	 * that fails in a way a retry can fix. `$perform` sends it some other way
	 * (the router's Closte-door request); by default it goes to the native door.
	 * Callers validate the request first: this replaces the key's entry.
	 *
	 * @param array         $op      Operation.
	 * @param callable|null $perform Returns a Closte_Operator_Result.
	 * @return Closte_Operator_Result|null The answer, or null when not tried.
	 */
	public function attempt( array $op, ?callable $perform = null ): ?Closte_Operator_Result {
		// The newest operation on a key wins: an older one must not undo it later.
		$this->rows->remove( self::key( $op ) );
		if ( $this->is_down() ) {
			$kept          = $this->keep( $op, 1, 0, 'not tried: the sidecar was unreachable moments ago', null, null );
			$this->outcome = $kept ? 'queued' : 'dropped';
			return null;
		}
		$result        = null === $perform ? $this->perform( $op ) : $perform();
		$this->outcome = $this->conclude( $op, $result, 0, 0, null, null );
		return $result;
	}

	/**
	 * How the last attempt() ended: 'done', 'queued' (kept for a retry) or
	 * 'dropped' (rejected with its reason); '' before any.
	 *
	 * @return string
	 */
	public function last_outcome(): string {
		return $this->outcome;
	}

	/**
	 * Retries what is due (everything when `$force`), and gives up what has
	 * waited longer than MAX_AGE. Once the sidecar proves unreachable the rest
	 * waits for the next round instead of each paying the timeout.
	 *
	 * @param bool     $force    Ignore the backoff.
	 * @param int|null $deadline Unix time after which nothing more is sent (the rest waits for the retry event).
	 * @return array{done: int, queued: int, dropped: int}
	 */
	public function drain( bool $force = false, ?int $deadline = null ): array {
		$summary     = array(
			'done'    => 0,
			'queued'  => 0,
			'dropped' => 0,
		);
		$now         = $this->now();
		$unreachable = null;
		foreach ( $this->rows->waiting() as $entry ) {
			$op        = self::operation( $entry );
			$attempts  = (int) $entry['attempts'];
			$conflicts = (int) ( $entry['conflicts'] ?? 0 );
			$since     = (int) $entry['since'];
			$version   = (int) $entry['version'];
			if ( $now - $since >= self::MAX_AGE ) {
				$this->give_up( $op, $version, self::too_old( $attempts, (string) $entry['error'] ), $attempts );
				++$summary['dropped'];
				continue;
			}
			if ( ! $force && (int) $entry['next'] > $now ) {
				continue;
			}
			if ( null !== $deadline && $this->now() >= $deadline ) {
				break;
			}
			if ( null !== $unreachable ) {
				$this->keep( $op, $attempts + 1, $conflicts, 'not tried: ' . $unreachable, $since, $version );
				++$summary['queued'];
				continue;
			}
			$result = $this->perform( $op );
			++$summary[ $this->conclude( $op, $result, $attempts, $conflicts, $since, $version ) ];
			if ( ! $result->reached() && ! $result->timed_out ) {
				$unreachable = $result->message();
			}
		}
		return $summary;
	}

	/**
	 * Sends one waiting entry now, whatever its backoff (the screen's Retry,
	 * `wp closte-operator queue retry`).
	 *
	 * @param string $key The entry's key (see key()).
	 * @return Closte_Operator_Result|null The answer, or null when no such entry waits.
	 */
	public function retry_now( string $key ): ?Closte_Operator_Result {
		$entries = $this->rows->waiting();
		if ( ! isset( $entries[ $key ] ) ) {
			return null;
		}
		$entry  = $entries[ $key ];
		$op     = self::operation( $entry );
		$result = $this->perform( $op );
		$this->conclude( $op, $result, (int) $entry['attempts'], (int) ( $entry['conflicts'] ?? 0 ), (int) $entry['since'], (int) $entry['version'] );
		return $result;
	}

	/**
	 * Drops one waiting entry without sending it: an administrator decided
	 * it should not happen. The whole-set sync still writes what WordPress's
	 * tables say.
	 *
	 * @param string $key The entry's key.
	 * @return bool Whether an entry was dropped.
	 */
	public function discard( string $key ): bool {
		return $this->rows->remove( $key );
	}

	/**
	 * Forgets the rejected changes.
	 *
	 * @return int How many.
	 */
	public function clear_rejected(): int {
		return $this->rows->clear_rejected();
	}

	/**
	 * Sends an operation to the native door.
	 *
	 * @param array $op Operation.
	 * @return Closte_Operator_Result
	 */
	public function perform( array $op ): Closte_Operator_Result {
		switch ( $op['op'] ) {
			case 'put':
				return $this->sidecar->put_domain( $op['domain'], null === $op['site'] ? null : (int) $op['site'] );
			case 'delete':
				return $this->sidecar->delete_domain( $op['domain'] );
			case 'site':
				return $this->sidecar->put_site_domains( (int) $op['site'], $op['domains'] );
		}
		return new Closte_Operator_Result( 400, '{"error":"unknown queued operation"}' );
	}

	/**
	 * The queued entries by key, oldest first: the operation plus `attempts`,
	 * `conflicts`, `next` (Unix time), `error`, `since` and `version`.
	 *
	 * @return array<string, array>
	 */
	public function entries(): array {
		return $this->rows->waiting();
	}

	/**
	 * Operations given up (newest first): refused in a way a retry cannot
	 * fix, too old, conflicting too often, or not queued because the queue
	 * was full; each with `time`, `error` and `attempts`.
	 *
	 * @return array<int, array>
	 */
	public function failures(): array {
		return $this->rows->rejected();
	}

	/**
	 * When the earliest entry is due, or null when the queue is empty.
	 *
	 * @return int|null
	 */
	public function next_due(): ?int {
		$next = null;
		foreach ( $this->rows->waiting() as $entry ) {
			$next = null === $next ? (int) $entry['next'] : min( $next, (int) $entry['next'] );
		}
		return $next;
	}

	/**
	 * Whether the breaker is open: the sidecar was unreachable moments ago.
	 *
	 * @return bool
	 */
	public function is_down(): bool {
		$down = $this->store->get( self::DOWN, null );
		return is_array( $down ) && (int) $down['until'] > $this->now();
	}

	/**
	 * The last transport failure, while it is the latest news:
	 * `{time, until, error}`, or null once the sidecar answered again.
	 *
	 * @return array|null
	 */
	public function last_unreachable(): ?array {
		$down = $this->store->get( self::DOWN, null );
		return is_array( $down ) ? $down : null;
	}

	/**
	 * Records whether the sidecar answered; opens or closes the breaker.
	 *
	 * @param Closte_Operator_Result $result Any answer from the sidecar.
	 * @return void
	 */
	public function observe( Closte_Operator_Result $result ): void {
		if ( $result->reached() || $result->timed_out ) { // A slow answer still proves the sidecar is there.
			if ( null !== $this->store->get( self::DOWN, null ) ) {
				$this->store->set( self::DOWN, null );
			}
			return;
		}
		$now = $this->now();
		$this->store->set(
			self::DOWN,
			array(
				'time'  => $now,
				'until' => $now + self::BREAKER_SECONDS,
				'error' => $result->message(),
			)
		);
	}

	/**
	 * Seconds to wait after the n-th failed attempt: the first failure (in a
	 * page request) is retried at the next cron run, then 30 s doubling to
	 * an hour.
	 *
	 * @param int $attempts Failed attempts so far.
	 * @return int
	 */
	public static function delay( int $attempts ): int {
		if ( $attempts <= 1 ) {
			return 0;
		}
		return (int) min( self::MAX_DELAY, self::FIRST_DELAY * ( 2 ** min( 20, $attempts - 2 ) ) );
	}

	/**
	 * Concludes one attempt: done, kept for a retry, or given up.
	 *
	 * @param array                  $op        Operation.
	 * @param Closte_Operator_Result $result    Its answer.
	 * @param int                    $attempts  Failed attempts before this one.
	 * @param int                    $conflicts Conflicts (409) among them.
	 * @param int|null               $since     When it was first queued (null: not queued).
	 * @param int|null               $version   The version of its entry (null: not queued).
	 * @return string 'done', 'queued' or 'dropped'.
	 */
	private function conclude( array $op, Closte_Operator_Result $result, int $attempts, int $conflicts, ?int $since, ?int $version ): string {
		$this->observe( $result );
		if ( $result->ok() ) {
			if ( null !== $version ) {
				$this->rows->remove( self::key( $op ), $version );
			}
			return 'done';
		}
		++$attempts;
		if ( ! $result->retryable() ) {
			$this->give_up( $op, $version, $result->message(), $attempts );
			return 'dropped';
		}
		if ( 409 === $result->status && ++$conflicts >= self::CONFLICT_ATTEMPTS ) {
			$this->give_up( $op, $version, self::conflicting( $conflicts, $result->message() ), $attempts );
			return 'dropped';
		}
		if ( null !== $since && $this->now() - $since >= self::MAX_AGE ) {
			$this->give_up( $op, $version, self::too_old( $attempts, $result->message() ), $attempts );
			return 'dropped';
		}
		return $this->keep( $op, $attempts, $conflicts, $result->message(), $since, $version ) ? 'queued' : 'dropped';
	}

	/**
	 * Queues an operation: a new entry (unless the queue is full), or the
	 * next state of the entry at `$version` (unless another request replaced
	 * it meanwhile: that newer one stands). One row either way.
	 *
	 * @param array    $op        Operation.
	 * @param int      $attempts  Failed attempts, this one included.
	 * @param int      $conflicts Conflicts among them.
	 * @param string   $error     Why it is queued.
	 * @param int|null $since     When it was first queued; now when null.
	 * @param int|null $version   The version of its entry; null for a new entry.
	 * @return bool False when given up because the queue is full.
	 */
	private function keep( array $op, int $attempts, int $conflicts, string $error, ?int $since, ?int $version ): bool {
		$now   = $this->now();
		$key   = self::key( $op );
		$entry = self::operation( $op ) + array(
			'attempts'  => $attempts,
			'conflicts' => $conflicts,
			'next'      => $now + self::delay( $attempts ),
			'error'     => $error,
			'since'     => $since ?? $now,
		);
		if ( null === $version ) {
			if ( $this->rows->count() >= self::MAX_ENTRIES ) {
				$this->give_up( $op, null, sprintf( 'not queued: the queue is full (%d changes waiting); %s', self::MAX_ENTRIES, $error ), $attempts );
				return false;
			}
			$this->rows->put( $key, $entry );
		} elseif ( ! $this->rows->replace( $key, $version, $entry ) ) {
			return true;
		}
		if ( null !== $this->on_change ) {
			( $this->on_change )( (int) $entry['next'] );
		}
		return true;
	}

	/**
	 * Moves an operation to the rejected ones with its reason; for a queued
	 * entry only if no other request replaced it meanwhile.
	 *
	 * @param array    $op       Operation.
	 * @param int|null $version  The version of its entry; null when not queued.
	 * @param string   $reason   Why.
	 * @param int      $attempts Failed attempts.
	 * @return void
	 */
	private function give_up( array $op, ?int $version, string $reason, int $attempts ): void {
		if ( null !== $version && ! $this->rows->remove( self::key( $op ), $version ) ) {
			return;
		}
		$this->rows->reject(
			self::operation( $op ) + array(
				'time'     => $this->now(),
				'error'    => $reason,
				'attempts' => $attempts,
			),
			self::FAILURES_KEPT
		);
	}

	/**
	 * The reason of a change given up after too many conflicts.
	 *
	 * @param int    $conflicts Conflicts.
	 * @param string $last      The last answer.
	 * @return string
	 */
	private static function conflicting( int $conflicts, string $last ): string {
		return sprintf( 'gave up after %d conflicts: the domain is held by another site / still being deleted (%s)', $conflicts, $last );
	}

	/**
	 * The reason of a change given up after MAX_AGE.
	 *
	 * @param int    $attempts Failed attempts.
	 * @param string $last     The last error.
	 * @return string
	 */
	private static function too_old( int $attempts, string $last ): string {
		return sprintf( 'gave up: still failing after %d days (%d attempts); last error: %s', (int) ( self::MAX_AGE / 86400 ), $attempts, $last );
	}

	/**
	 * The operation part of an entry.
	 *
	 * @param array $entry Entry or operation.
	 * @return array
	 */
	private static function operation( array $entry ): array {
		return array_intersect_key( $entry, array_flip( array( 'op', 'domain', 'site', 'domains' ) ) );
	}

	/**
	 * Now, from the clock.
	 *
	 * @return int
	 */
	private function now(): int {
		return (int) ( $this->clock )();
	}
}
