<?php
/**
 * What the screen asks of the plugin, in one place.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * The screen's and Site Health's view of the plugin: the DNS check interval,
 * the sync schedule and progress, and the queue actions. Each method calls the
 * plugin's own (Closte_Operator_Plugin, Closte_Operator_Queue,
 * Closte_Operator_Sync).
 *
 * PLACEHOLDER: the branches under "if ( ! method_exists( ... ) )" stand in
 * for plugin methods that are being added alongside this screen
 * (check_interval, save_check_interval, next_sync, sync_overdue, recurrence,
 * Sync::progress, Queue::retry_now, discard, clear_rejected). Once those are
 * there, the branches are dead code and this file can shrink to the
 * delegating calls.
 */
final class Closte_Operator_Backend {

	/** PLACEHOLDER: the network option the stand-in keeps the interval in. */
	const INTERVAL_OPTION = 'closte_operator_check_interval';

	/** PLACEHOLDER: a sync this long past its time is overdue. */
	const OVERDUE_AFTER = 600;

	/**
	 * Constructor.
	 *
	 * @param object $plugin The plugin (Closte_Operator_Plugin, or a stand-in in the unit tests).
	 */
	public function __construct( public readonly object $plugin ) {}

	/**
	 * The DNS check interval every MappedDomain gets.
	 *
	 * @return array{seconds: int|null, source: string, error: string}
	 */
	public function check_interval(): array {
		if ( method_exists( $this->plugin, 'check_interval' ) ) {
			$interval = (array) $this->plugin->check_interval();
			return array(
				'seconds' => isset( $interval['seconds'] ) && is_int( $interval['seconds'] ) ? $interval['seconds'] : null,
				'source'  => (string) ( $interval['source'] ?? 'sidecar-default' ),
				'error'   => (string) ( $interval['error'] ?? '' ),
			);
		}
		// PLACEHOLDER: a network option; no Ultimate Multisite lookup.
		$seconds = get_site_option( self::INTERVAL_OPTION, null );
		return array(
			'seconds' => is_numeric( $seconds ) ? (int) $seconds : null,
			'source'  => is_numeric( $seconds ) ? 'setting' : 'sidecar-default',
			'error'   => '',
		);
	}

	/**
	 * Saves the DNS check interval (null clears it).
	 *
	 * @param int|null $seconds Seconds, 10..300.
	 * @return string '' when saved, else why not.
	 */
	public function save_check_interval( ?int $seconds ): string {
		if ( method_exists( $this->plugin, 'save_check_interval' ) ) {
			return (string) $this->plugin->save_check_interval( $seconds );
		}
		// PLACEHOLDER: stored only; existing MappedDomains are not patched.
		if ( null === $seconds ) {
			delete_site_option( self::INTERVAL_OPTION );
			return '';
		}
		if ( $seconds < Closte_Operator_Screen::INTERVAL_MIN || $seconds > Closte_Operator_Screen::INTERVAL_MAX ) {
			return 'out of range';
		}
		update_site_option( self::INTERVAL_OPTION, $seconds );
		return '';
	}

	/**
	 * When the next sync runs (Unix time), or null when none is scheduled.
	 *
	 * @return int|null
	 */
	public function next_sync(): ?int {
		if ( method_exists( $this->plugin, 'next_sync' ) ) {
			$next = $this->plugin->next_sync();
			return is_int( $next ) ? $next : null;
		}
		// PLACEHOLDER: the event on the main site.
		$main   = (int) get_main_site_id( get_main_network_id() );
		$switch = $main > 0 && get_current_blog_id() !== $main;
		if ( $switch ) {
			switch_to_blog( $main );
		}
		$next = wp_next_scheduled( Closte_Operator_Plugin::SYNC_HOOK );
		if ( $switch ) {
			restore_current_blog();
		}
		return false === $next ? null : (int) $next;
	}

	/**
	 * Whether the sync should have run by now and has not.
	 *
	 * @return bool
	 */
	public function sync_overdue(): bool {
		if ( method_exists( $this->plugin, 'sync_overdue' ) ) {
			return (bool) $this->plugin->sync_overdue();
		}
		// PLACEHOLDER: due more than OVERDUE_AFTER seconds ago.
		$next = $this->next_sync();
		return null !== $next && $next < time() - self::OVERDUE_AFTER;
	}

	/**
	 * The sync's recurrence.
	 *
	 * @return array{name: string, interval: int, error: string}
	 */
	public function recurrence(): array {
		if ( method_exists( $this->plugin, 'recurrence' ) ) {
			$recurrence = (array) $this->plugin->recurrence();
			return array(
				'name'     => (string) ( $recurrence['name'] ?? '' ),
				'interval' => (int) ( $recurrence['interval'] ?? 0 ),
				'error'    => (string) ( $recurrence['error'] ?? '' ),
			);
		}
		// PLACEHOLDER: the filtered name looked up in WordPress's schedules.
		$name      = (string) apply_filters( 'closte_operator_sync_recurrence', 'hourly' );
		$schedules = wp_get_schedules();
		return array(
			'name'     => $name,
			'interval' => isset( $schedules[ $name ]['interval'] ) ? (int) $schedules[ $name ]['interval'] : 0,
			'error'    => isset( $schedules[ $name ] ) ? '' : sprintf( 'WordPress knows no recurrence named %s', $name ),
		);
	}

	/**
	 * Runs one batch of the whole-set sync.
	 *
	 * @return array The summary.
	 */
	public function sync(): array {
		return (array) $this->plugin->sync();
	}

	/**
	 * The last sync summary, or null.
	 *
	 * @return array|null
	 */
	public function last_sync(): ?array {
		return $this->plugin->sync->last();
	}

	/**
	 * While a sync is split in batches: started, done, remaining; else null.
	 *
	 * @return array|null
	 */
	public function progress(): ?array {
		if ( method_exists( $this->plugin->sync, 'progress' ) ) {
			$progress = $this->plugin->sync->progress();
			return is_array( $progress ) ? $progress : null;
		}
		return null; // PLACEHOLDER: no batches yet.
	}

	/**
	 * Retries one waiting change now.
	 *
	 * @param string $key The entry's key.
	 * @return Closte_Operator_Result|null Null when it is no longer waiting.
	 */
	public function retry_now( string $key ): ?Closte_Operator_Result {
		$queue = $this->plugin->queue;
		if ( method_exists( $queue, 'retry_now' ) ) {
			return $queue->retry_now( $key );
		}
		// PLACEHOLDER: attempt() replaces the entry with a fresh try (its attempt count restarts).
		$entries = $queue->entries();
		if ( ! isset( $entries[ $key ] ) ) {
			return null;
		}
		$op = array_intersect_key( $entries[ $key ], array_flip( array( 'op', 'domain', 'site', 'domains' ) ) );
		return $queue->attempt( $op ) ?? Closte_Operator_Result::unreachable( 'not tried: the sidecar was unreachable moments ago' );
	}

	/**
	 * Drops one waiting change.
	 *
	 * @param string $key The entry's key.
	 * @return bool Whether it was waiting.
	 */
	public function discard( string $key ): bool {
		$queue = $this->plugin->queue;
		if ( method_exists( $queue, 'discard' ) ) {
			return (bool) $queue->discard( $key );
		}
		// PLACEHOLDER: straight to the queue's table.
		return ( new Closte_Operator_Table_Store() )->remove( $key );
	}

	/**
	 * Empties the list of rejected changes.
	 *
	 * @return int How many there were.
	 */
	public function clear_rejected(): int {
		$queue = $this->plugin->queue;
		if ( method_exists( $queue, 'clear_rejected' ) ) {
			return (int) $queue->clear_rejected();
		}
		// PLACEHOLDER: straight to the queue's table.
		global $wpdb;
		$table = Closte_Operator_Table_Store::table();
		$count = count( $queue->failures() );
		$wpdb->query( $wpdb->prepare( "DELETE FROM `{$table}` WHERE state = %s", Closte_Operator_Table_Store::REJECTED ) ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the table name is ours.
		return $count;
	}
}
