<?php
/**
 * `wp closte-operator`: the state and the sync from a shell.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Where the commands write: WP-CLI's output in production, an array in tests.
 */
interface Closte_Operator_CLI_Output {

	/**
	 * One line of output.
	 *
	 * @param string $line Text.
	 * @return void
	 */
	public function line( string $line ): void;

	/**
	 * The command failed: says why and ends with a non-zero exit status.
	 *
	 * @param string $message Why.
	 * @return void
	 */
	public function error( string $message ): void;
}

/**
 * Writes through WP-CLI.
 */
final class Closte_Operator_WP_CLI_Output implements Closte_Operator_CLI_Output {

	/**
	 * One line of output.
	 *
	 * @param string $line Text.
	 * @return void
	 */
	public function line( string $line ): void {
		WP_CLI::line( $line );
	}

	/**
	 * Ends the command with an error.
	 *
	 * @param string $message Why.
	 * @return void
	 */
	public function error( string $message ): void {
		WP_CLI::error( $message );
	}
}

/**
 * Shows and drives the plugin: the sidecar and its domains, the queue, the sync.
 *
 * ## EXAMPLES
 *
 *     wp closte-operator status
 *     wp closte-operator sync
 *     wp closte-operator queue
 *     wp closte-operator queue retry --all
 *     wp closte-operator queue discard site:12
 *     wp closte-operator uninstall --yes
 */
final class Closte_Operator_CLI {

	/**
	 * Where output goes.
	 *
	 * @var Closte_Operator_CLI_Output
	 */
	private Closte_Operator_CLI_Output $out;

	/**
	 * Constructor.
	 *
	 * @param Closte_Operator_Plugin          $plugin The plugin.
	 * @param Closte_Operator_CLI_Output|null $out    Where output goes; WP-CLI when null.
	 */
	public function __construct( private Closte_Operator_Plugin $plugin, ?Closte_Operator_CLI_Output $out = null ) {
		$this->out = $out ?? new Closte_Operator_WP_CLI_Output();
	}

	/**
	 * Shows the sidecar, the domains by stage, the queue and the sync.
	 *
	 * Exits non-zero when the sidecar cannot be reached or refuses the token.
	 *
	 * ## EXAMPLES
	 *
	 *     wp closte-operator status
	 *
	 * @param array $args       Positional arguments (none).
	 * @param array $assoc_args Options (none).
	 * @return void
	 */
	public function status( $args = array(), $assoc_args = array() ): void {
		$config  = $this->plugin->config;
		$listing = $this->plugin->sidecar->domains();
		$this->plugin->queue->observe( $listing );
		$json = $listing->json();
		$this->out->line( sprintf( 'sidecar: %s', $config->url ) );
		$interval = $this->plugin->check_interval();
		$this->out->line(
			sprintf(
				'check interval: %s (%s)%s',
				null === $interval['seconds'] ? 'the sidecar\'s default' : $interval['seconds'] . 's',
				$interval['source'],
				'' === $interval['error'] ? '' : '; ' . $interval['error']
			)
		);
		$entries  = $this->plugin->queue->entries();
		$rejected = $this->plugin->queue->failures();
		$this->out->line( sprintf( 'queue: %d waiting, %d rejected', count( $entries ), count( $rejected ) ) );
		$this->sync_lines();
		if ( ! $listing->ok() || ! is_array( $json ) || ! isset( $json['domains'] ) || ! is_array( $json['domains'] ) ) {
			$this->out->error( sprintf( 'cannot list the domains: %s', $listing->message() ) );
			return;
		}
		$stages    = array();
		$not_ready = array();
		foreach ( $json['domains'] as $entry ) {
			if ( ! is_array( $entry ) ) {
				continue;
			}
			$stage            = isset( $entry['stage'] ) && is_string( $entry['stage'] ) ? $entry['stage'] : 'new';
			$stages[ $stage ] = ( $stages[ $stage ] ?? 0 ) + 1;
			if ( empty( $entry['ready'] ) ) {
				$not_ready[] = $entry;
			}
		}
		ksort( $stages );
		$by_stage = array();
		foreach ( $stages as $stage => $count ) {
			$by_stage[] = $stage . ' ' . $count;
		}
		$this->out->line( sprintf( 'domains: %d (%s), %d not ready', count( $json['domains'] ), implode( ', ', $by_stage ), count( $not_ready ) ) );
		foreach ( $not_ready as $entry ) {
			$this->out->line(
				sprintf(
					'  %s: %s%s',
					(string) ( $entry['domain'] ?? '?' ),
					(string) ( $entry['stage'] ?? 'new' ),
					isset( $entry['reason'] ) && is_string( $entry['reason'] ) ? ' (' . $entry['reason'] . ( isset( $entry['message'] ) && is_string( $entry['message'] ) ? ': ' . $entry['message'] : '' ) . ')' : ''
				)
			);
		}
	}

	/**
	 * Runs the whole-set sync: every batch until every site is done, unless
	 * --batch.
	 *
	 * ## OPTIONS
	 *
	 * [--batch]
	 * : Run one batch only (as WP-Cron does); a follow-up event continues.
	 *
	 * [--budget=<seconds>]
	 * : Seconds each batch may spend. Default: the plugin's (20, or a third of max_execution_time).
	 *
	 * ## EXAMPLES
	 *
	 *     wp closte-operator sync
	 *     wp closte-operator sync --batch --budget=5
	 *
	 * @param array $args       Positional arguments (none).
	 * @param array $assoc_args --batch, --budget.
	 * @return void
	 */
	public function sync( $args = array(), $assoc_args = array() ): void {
		$budget = isset( $assoc_args['budget'] ) ? (int) $assoc_args['budget'] : null;
		if ( null !== $budget && $budget < 1 ) {
			$this->out->error( '--budget must be a whole number of seconds, at least 1' );
			return;
		}
		$once = ! empty( $assoc_args['batch'] );
		do {
			$summary = $this->plugin->sync( $budget );
			if ( ! $summary['ok'] ) {
				$this->out->error( sprintf( 'sync failed: %s', $summary['error'] ) );
				return;
			}
			$this->out->line(
				sprintf(
					'batch %d: %d sites; %d written, %d intervals set, %d queued, %d rejected so far; %d left (%d s)',
					$summary['batches'],
					$summary['sites'],
					$summary['written'],
					$summary['intervals'],
					$summary['queued'],
					$summary['failed'],
					$summary['remaining'],
					$summary['seconds']
				)
			);
		} while ( ! $once && ! $summary['complete'] );
		if ( $summary['complete'] ) {
			$retried = $summary['retried'];
			$this->out->line( sprintf( 'sync complete; queue retried: %d done, %d still waiting, %d rejected', $retried['done'] ?? 0, $retried['queued'] ?? 0, $retried['dropped'] ?? 0 ) );
		}
	}

	/**
	 * Lists the waiting changes and the rejected ones; retries or discards
	 * waiting ones.
	 *
	 * ## OPTIONS
	 *
	 * [<action>]
	 * : `list` (the default), `retry` (send now, whatever the backoff), `discard` (drop without sending) or `clear-rejected`.
	 *
	 * [<key>...]
	 * : The entries, by key as `list` shows them (e.g. `domain:shop.example.com`, `site:12`).
	 *
	 * [--all]
	 * : Every waiting entry.
	 *
	 * ## EXAMPLES
	 *
	 *     wp closte-operator queue
	 *     wp closte-operator queue retry --all
	 *     wp closte-operator queue discard domain:shop.example.com
	 *
	 * @param array $args       Action and keys.
	 * @param array $assoc_args --all.
	 * @return void
	 */
	public function queue( $args = array(), $assoc_args = array() ): void {
		$action = (string) ( $args[0] ?? 'list' );
		$keys   = array_map( 'strval', array_slice( $args, 1 ) );
		$queue  = $this->plugin->queue;
		if ( 'list' === $action ) {
			foreach ( $queue->entries() as $key => $entry ) {
				$this->out->line( sprintf( 'waiting  %s  attempts %d  next %s  %s', $key, (int) $entry['attempts'], gmdate( 'Y-m-d\TH:i:s\Z', (int) $entry['next'] ), (string) $entry['error'] ) );
			}
			foreach ( $queue->failures() as $record ) {
				$this->out->line( sprintf( 'rejected %s  %s  %s', Closte_Operator_Queue::key( $record ), gmdate( 'Y-m-d\TH:i:s\Z', (int) $record['time'] ), (string) $record['error'] ) );
			}
			return;
		}
		if ( 'clear-rejected' === $action ) {
			$this->out->line( sprintf( 'cleared %d rejected changes', $queue->clear_rejected() ) );
			return;
		}
		if ( 'retry' !== $action && 'discard' !== $action ) {
			$this->out->error( sprintf( 'unknown action "%s": use list, retry, discard or clear-rejected', $action ) );
			return;
		}
		if ( ! empty( $assoc_args['all'] ) ) {
			$keys = array_keys( $queue->entries() );
		} elseif ( array() === $keys ) {
			$this->out->error( sprintf( 'name the entries to %s (keys from `wp closte-operator queue`), or --all', $action ) );
			return;
		}
		$missing = 0;
		foreach ( $keys as $key ) {
			if ( 'discard' === $action ) {
				$done = $queue->discard( $key );
				$this->out->line( sprintf( '%s: %s', $key, $done ? 'discarded' : 'not waiting' ) );
			} else {
				$result = $queue->retry_now( $key );
				$done   = null !== $result;
				$this->out->line( sprintf( '%s: %s', $key, null === $result ? 'not waiting' : ( $result->ok() ? 'done' : $result->message() ) ) );
			}
			$missing += $done ? 0 : 1;
		}
		$next = $queue->next_due();
		if ( null !== $next ) {
			$this->plugin->schedule_retry( $next );
		}
		if ( $missing > 0 ) {
			$this->out->error( sprintf( '%d of the entries named are not waiting', $missing ) );
		}
	}

	/**
	 * Removes the plugin's WP-Cron events, network options and queue table.
	 * MappedDomains stay. Remove the mu-plugin files as well, or the next
	 * request schedules the sync again.
	 *
	 * ## OPTIONS
	 *
	 * [--yes]
	 * : Do it (without, nothing is removed).
	 *
	 * ## EXAMPLES
	 *
	 *     wp closte-operator uninstall --yes && rm -r wp-content/mu-plugins/closte-operator.php wp-content/mu-plugins/closte-operator
	 *
	 * @param array $args       Positional arguments (none).
	 * @param array $assoc_args --yes.
	 * @return void
	 */
	public function uninstall( $args = array(), $assoc_args = array() ): void {
		if ( empty( $assoc_args['yes'] ) ) {
			$this->out->error( 'this removes the plugin\'s events, options and queue (waiting changes are lost); run again with --yes' );
			return;
		}
		$removed = $this->plugin->uninstall();
		$this->out->line( sprintf( 'removed %d scheduled events, %d network options and the queue table; MappedDomains are left in Kubernetes', $removed['events'], $removed['options'] ) );
	}

	/**
	 * The sync lines of `status`.
	 *
	 * @return void
	 */
	private function sync_lines(): void {
		$recurrence = $this->plugin->recurrence();
		$next       = $this->plugin->next_sync();
		$this->out->line(
			sprintf(
				'sync: %s, next %s%s%s',
				$recurrence['name'],
				null === $next ? 'not scheduled' : gmdate( 'Y-m-d\TH:i:s\Z', $next ),
				$this->plugin->sync_overdue() ? ' (OVERDUE: is WP-Cron running?)' : '',
				'' === $recurrence['error'] ? '' : '; ' . $recurrence['error']
			)
		);
		$progress = $this->plugin->sync->progress();
		if ( null !== $progress ) {
			$this->out->line( sprintf( 'sync in progress: %d batches, %d done, %d left', (int) $progress['batches'], (int) $progress['done'], (int) $progress['remaining'] ) );
		}
		$last = $this->plugin->sync->last();
		if ( null !== $last ) {
			$this->out->line(
				$last['ok']
					? sprintf( 'last batch: %s, %d written, %d intervals set, %d queued, %d rejected', gmdate( 'Y-m-d\TH:i:s\Z', (int) $last['time'] ), (int) $last['written'], (int) ( $last['intervals'] ?? 0 ), (int) $last['queued'], (int) $last['failed'] )
					: sprintf( 'last batch failed: %s', (string) $last['error'] )
			);
		}
	}
}
