<?php
/**
 * The queue's entries in a table of their own, one row per entry.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * `{base_prefix}closte_operator_queue`: one row per waiting entry (keyed by
 * the hash of its key) and one per rejected change, read and written with
 * direct queries, so nothing comes from the object cache and no write
 * rewrites another entry. Rows are JSON, never PHP-serialized.
 *
 * Versions make the writes safe between concurrent requests: every write
 * gives the row a new random version, and replace() and remove() with a
 * version change the row only if it still has that version (one statement,
 * atomic in MySQL/MariaDB).
 *
 * The table is created on first use (CREATE TABLE IF NOT EXISTS); the queue
 * of earlier versions (the network options `closte_operator_queue` and
 * `closte_operator_failures`) moves into it then.
 */
final class Closte_Operator_Table_Store implements Closte_Operator_Queue_Store {

	/** Bumped when the table changes. */
	const SCHEMA = 1;

	/** The network option that records the schema in place. */
	const SCHEMA_OPTION = 'closte_operator_queue_schema';

	const WAITING  = 'waiting';
	const REJECTED = 'rejected';

	/**
	 * Whether the table is known to exist in this request.
	 *
	 * @var bool
	 */
	private bool $ready = false;

	/**
	 * Why the table could not be created in this request ('' when it could).
	 *
	 * @var string
	 */
	private static string $problem = '';

	/**
	 * The table's name.
	 *
	 * @return string
	 */
	public static function table(): string {
		global $wpdb;
		return $wpdb->base_prefix . 'closte_operator_queue';
	}

	/**
	 * The waiting entries by key, oldest first.
	 *
	 * @return array<string, array>
	 */
	public function waiting(): array {
		global $wpdb;
		if ( ! $this->ready() ) {
			return array();
		}
		$table   = self::table();
		$rows    = $wpdb->get_results( $wpdb->prepare( "SELECT version, entry FROM `{$table}` WHERE state = %s ORDER BY seq", self::WAITING ), ARRAY_A ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- fresh reads on purpose; the table name is ours.
		$entries = array();
		foreach ( (array) $rows as $row ) {
			$entry = json_decode( (string) $row['entry'], true );
			if ( is_array( $entry ) && isset( $entry['key'] ) ) {
				$key = (string) $entry['key'];
				unset( $entry['key'] );
				$entries[ $key ] = $entry + array( 'version' => (int) $row['version'] );
			}
		}
		return $entries;
	}

	/**
	 * How many entries are waiting.
	 *
	 * @return int
	 */
	public function count(): int {
		global $wpdb;
		if ( ! $this->ready() ) {
			return 0;
		}
		$table = self::table();
		return (int) $wpdb->get_var( $wpdb->prepare( "SELECT COUNT(*) FROM `{$table}` WHERE state = %s", self::WAITING ) ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the table name is ours.
	}

	/**
	 * Writes the entry of a key, replacing any: one INSERT ... ON DUPLICATE KEY UPDATE.
	 *
	 * @param string $key   Key.
	 * @param array  $entry Entry.
	 * @return void
	 */
	public function put( string $key, array $entry ): void {
		global $wpdb;
		if ( ! $this->ready() ) {
			return;
		}
		$table = self::table();
		$wpdb->query( // phpcs:ignore WordPress.DB.DirectDatabaseQuery
			$wpdb->prepare(
				"INSERT INTO `{$table}` (id, state, version, entry) VALUES (%s, %s, %d, %s) ON DUPLICATE KEY UPDATE state = VALUES(state), version = VALUES(version), entry = VALUES(entry)", // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the table name is ours.
				self::id( $key ),
				self::WAITING,
				self::version(),
				self::encode( $key, $entry )
			)
		);
	}

	/**
	 * Replaces the entry of a key if it is still at `$version`.
	 *
	 * @param string $key     Key.
	 * @param int    $version The version read.
	 * @param array  $entry   Entry.
	 * @return bool
	 */
	public function replace( string $key, int $version, array $entry ): bool {
		global $wpdb;
		if ( ! $this->ready() ) {
			return false;
		}
		$table = self::table();
		return 1 === $wpdb->query( // phpcs:ignore WordPress.DB.DirectDatabaseQuery
			$wpdb->prepare(
				"UPDATE `{$table}` SET version = %d, entry = %s WHERE id = %s AND state = %s AND version = %d", // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the table name is ours.
				self::version(),
				self::encode( $key, $entry ),
				self::id( $key ),
				self::WAITING,
				$version
			)
		);
	}

	/**
	 * Removes the entry of a key; only at `$version` when given.
	 *
	 * @param string   $key     Key.
	 * @param int|null $version The version read, or null.
	 * @return bool
	 */
	public function remove( string $key, ?int $version = null ): bool {
		global $wpdb;
		if ( ! $this->ready() ) {
			return false;
		}
		$table = self::table();
		if ( null === $version ) {
			$sql = $wpdb->prepare( "DELETE FROM `{$table}` WHERE id = %s AND state = %s", self::id( $key ), self::WAITING ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the table name is ours.
		} else {
			$sql = $wpdb->prepare( "DELETE FROM `{$table}` WHERE id = %s AND state = %s AND version = %d", self::id( $key ), self::WAITING, $version ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the table name is ours.
		}
		return (int) $wpdb->query( $sql ) > 0; // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.PreparedSQL.NotPrepared -- prepared above.
	}

	/**
	 * Records a change given up (a row of its own), then drops all but the
	 * newest `$keep`.
	 *
	 * @param array $record The operation plus time, error and attempts.
	 * @param int   $keep   How many to keep.
	 * @return void
	 */
	public function reject( array $record, int $keep ): void {
		global $wpdb;
		if ( ! $this->ready() ) {
			return;
		}
		$table   = self::table();
		$version = self::version();
		$wpdb->query( // phpcs:ignore WordPress.DB.DirectDatabaseQuery
			$wpdb->prepare(
				"INSERT INTO `{$table}` (id, state, version, entry) VALUES (%s, %s, %d, %s)", // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the table name is ours.
				self::id( 'rejected:' . $version ),
				self::REJECTED,
				$version,
				self::encode( 'rejected:' . $version, $record )
			)
		);
		$old = $wpdb->get_col( $wpdb->prepare( "SELECT seq FROM `{$table}` WHERE state = %s ORDER BY seq DESC LIMIT %d, 100", self::REJECTED, $keep ) ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the table name is ours.
		if ( array() !== $old ) {
			$seqs = implode( ',', array_map( 'intval', $old ) );
			$wpdb->query( "DELETE FROM `{$table}` WHERE seq IN ({$seqs})" ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- whole numbers only.
		}
	}

	/**
	 * The changes given up, newest first.
	 *
	 * @return array<int, array>
	 */
	public function rejected(): array {
		global $wpdb;
		if ( ! $this->ready() ) {
			return array();
		}
		$table   = self::table();
		$rows    = $wpdb->get_col( $wpdb->prepare( "SELECT entry FROM `{$table}` WHERE state = %s ORDER BY seq DESC", self::REJECTED ) ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the table name is ours.
		$records = array();
		foreach ( (array) $rows as $row ) {
			$record = json_decode( (string) $row, true );
			if ( is_array( $record ) ) {
				unset( $record['key'] );
				$records[] = $record;
			}
		}
		return $records;
	}

	/**
	 * Forgets every change given up.
	 *
	 * @return int How many were forgotten.
	 */
	public function clear_rejected(): int {
		global $wpdb;
		if ( ! $this->ready() ) {
			return 0;
		}
		$table = self::table();
		return (int) $wpdb->query( $wpdb->prepare( "DELETE FROM `{$table}` WHERE state = %s", self::REJECTED ) ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the table name is ours.
	}

	/**
	 * Why the table cannot be used, or '' when it can (it is created now if
	 * it is not there yet).
	 *
	 * @return string
	 */
	public static function problem(): string {
		( new self() )->ready();
		return self::$problem;
	}

	/**
	 * Drops the table and its schema mark (uninstall).
	 *
	 * @return void
	 */
	public static function drop(): void {
		global $wpdb;
		$table = self::table();
		$wpdb->query( "DROP TABLE IF EXISTS `{$table}`" ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.DirectDatabaseQuery.SchemaChange,WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the table name is ours.
		delete_network_option( get_main_network_id(), self::SCHEMA_OPTION );
	}

	/**
	 * Makes sure the table exists (once per schema, recorded in a network
	 * option), and moves the queue of earlier versions into it.
	 *
	 * @return bool Whether the table can be used.
	 */
	private function ready(): bool {
		global $wpdb;
		if ( $this->ready ) {
			return true;
		}
		$network = get_main_network_id();
		if ( (int) get_network_option( $network, self::SCHEMA_OPTION, 0 ) >= self::SCHEMA ) {
			$this->ready = true;
			return true;
		}
		$table   = self::table();
		$collate = $wpdb->get_charset_collate();
		$created = $wpdb->query( // phpcs:ignore WordPress.DB.DirectDatabaseQuery,WordPress.DB.DirectDatabaseQuery.SchemaChange
			"CREATE TABLE IF NOT EXISTS `{$table}` (
				seq bigint(20) unsigned NOT NULL AUTO_INCREMENT,
				id char(40) NOT NULL,
				state varchar(16) NOT NULL,
				version bigint(20) unsigned NOT NULL,
				entry longtext NOT NULL,
				PRIMARY KEY  (seq),
				UNIQUE KEY id (id),
				KEY state (state)
			) {$collate}" // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- the table name is ours.
		);
		if ( false === $created ) {
			self::$problem = '' !== (string) $wpdb->last_error ? (string) $wpdb->last_error : 'CREATE TABLE failed';
			return false;
		}
		$this->ready = true;

		// The queue as earlier versions kept it: one network option each.
		$old = get_network_option( $network, 'closte_operator_queue', null );
		if ( is_array( $old ) ) {
			foreach ( $old as $key => $entry ) {
				if ( is_array( $entry ) ) {
					$this->put( (string) $key, $entry );
				}
			}
		}
		$failures = get_network_option( $network, 'closte_operator_failures', null );
		if ( is_array( $failures ) ) {
			foreach ( array_reverse( $failures ) as $record ) {
				if ( is_array( $record ) ) {
					$this->reject( $record, Closte_Operator_Queue::FAILURES_KEPT );
				}
			}
		}
		delete_network_option( $network, 'closte_operator_queue' );
		delete_network_option( $network, 'closte_operator_failures' );
		update_network_option( $network, self::SCHEMA_OPTION, self::SCHEMA );
		return true;
	}

	/**
	 * The row id of a key.
	 *
	 * @param string $key Key.
	 * @return string
	 */
	private static function id( string $key ): string {
		return sha1( $key );
	}

	/**
	 * A new version: random, so that two requests never write the same one.
	 *
	 * @return int
	 */
	private static function version(): int {
		return random_int( 1, PHP_INT_MAX );
	}

	/**
	 * A row's JSON, the key inside.
	 *
	 * @param string $key   Key.
	 * @param array  $entry Entry.
	 * @return string
	 */
	private static function encode( string $key, array $entry ): string {
		unset( $entry['version'] );
		return (string) wp_json_encode( array( 'key' => $key ) + $entry );
	}
}
