<?php
/**
 * The verdict of the Site Health test, from what the sidecar answered.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Pure: answers in, a status and the lines to show out.
 */
final class Closte_Operator_Health {

	/**
	 * Judges the sidecar: a URL that may carry the token (loopback or https),
	 * reachable (GET /healthz), token accepted, every domain Ready and no
	 * certificate ending within Closte_Operator_Screen::EXPIRY_DAYS
	 * (GET /v1/domains), nothing waiting in the queue, the sync not overdue.
	 * Each problem comes with what to do about it.
	 *
	 * @param Closte_Operator_Config      $config     The settings.
	 * @param Closte_Operator_Result      $health     Answer to GET /healthz.
	 * @param Closte_Operator_Result|null $domains    Answer to GET /v1/domains (null when not asked).
	 * @param int                         $queued     Writes waiting in the queue.
	 * @param int                         $now        Unix time (certificate expiry); 0 skips that check.
	 * @param bool                        $overdue    Whether the periodic sync should have run and has not.
	 * @param int|null                    $next_sync  When the sync was due (Unix time), for the text.
	 * @param string                      $token_file CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE, for the text.
	 * @param string                      $queue_problem Why the queue's table cannot be used ('' when it can).
	 * @return array{status: string, summary: string, problems: array<int, string>, not_ready: array<int, array>, expiring: array<int, array>}
	 */
	public static function evaluate(
		Closte_Operator_Config $config,
		Closte_Operator_Result $health,
		?Closte_Operator_Result $domains,
		int $queued,
		int $now = 0,
		bool $overdue = false,
		?int $next_sync = null,
		string $token_file = '',
		string $queue_problem = ''
	): array {
		$verdict = array(
			'status'    => 'good',
			'summary'   => __( 'The closte-operator sidecar is reachable and accepts the token', 'closte-operator' ),
			'problems'  => array(),
			'not_ready' => array(),
			'expiring'  => array(),
		);
		$recommend = function ( string $summary ) use ( &$verdict ): void {
			if ( 'good' === $verdict['status'] ) {
				$verdict['status']  = 'recommended';
				$verdict['summary'] = $summary;
			}
		};
		if ( '' !== $config->token_error ) {
			$verdict['problems'][] = sprintf(
				/* translators: %s: why there is no token */
				__( 'No sidecar token: %s.', 'closte-operator' ),
				$config->token_error
			);
		}
		if ( '' !== $queue_problem ) {
			$verdict['status']     = 'critical';
			$verdict['summary']    = __( 'The closte-operator queue cannot keep domain changes', 'closte-operator' );
			$verdict['problems'][] = sprintf(
				/* translators: %s: the database's error */
				__( 'The queue table cannot be created (%s): a domain change that fails is not kept for a retry, only the next whole-set sync repairs it. Let the database user create tables, or create it as the plugin\'s CREATE TABLE says.', 'closte-operator' ),
				$queue_problem
			);
		}
		if ( '' === $config->client_key ) {
			$verdict['problems'][] = __( 'CLOSTE_CLIENT_API_KEY is not defined in wp-config.php: Ultimate Multisite\'s Closte integration sends nothing, so none of its calls is routed. Define it as a placeholder (any random string, never a Closte key).', 'closte-operator' );
		}
		if ( '' !== $config->url_error ) {
			$verdict['status']     = 'critical';
			$verdict['summary']    = __( 'The closte-operator sidecar URL would expose the token', 'closte-operator' );
			$verdict['problems'][] = $config->url_error . '.';
		} elseif ( ! $health->ok() ) {
			$verdict['status']     = 'critical';
			$verdict['summary']    = __( 'The closte-operator sidecar cannot be reached', 'closte-operator' );
			$verdict['problems'][] = sprintf( 'GET %s/healthz: %s.', $config->url, $health->message() );
			$verdict['problems'][] = Closte_Operator_Screen::listing_step( $health, $config->url, $token_file );
		} elseif ( null === $domains || 401 === $domains->status || 403 === $domains->status ) {
			$verdict['status']     = 'critical';
			$verdict['summary']    = __( 'The closte-operator sidecar refuses the token', 'closte-operator' );
			$verdict['problems'][] = null === $domains ? __( 'The token was not tried.', 'closte-operator' ) : sprintf( 'GET %s/v1/domains: %s.', $config->url, $domains->message() );
			$verdict['problems'][] = Closte_Operator_Screen::listing_step( new Closte_Operator_Result( 401 ), $config->url, $token_file );
		} elseif ( ! $domains->ok() || ! is_array( $domains->json() ) ) {
			$verdict['status']     = 'critical';
			$verdict['summary']    = __( 'The closte-operator sidecar cannot list the domains', 'closte-operator' );
			$verdict['problems'][] = sprintf( 'GET %s/v1/domains: %s.', $config->url, $domains->message() );
			$verdict['problems'][] = Closte_Operator_Screen::listing_step( $domains, $config->url, $token_file );
		} else {
			$json = $domains->json();
			foreach ( isset( $json['domains'] ) && is_array( $json['domains'] ) ? $json['domains'] : array() as $entry ) {
				if ( ! is_array( $entry ) ) {
					continue;
				}
				if ( empty( $entry['ready'] ) ) {
					$verdict['not_ready'][] = $entry;
				} elseif ( $now > 0 && Closte_Operator_Screen::expiring( $entry, $now ) ) {
					$verdict['expiring'][] = $entry;
				}
			}
			if ( array() !== $verdict['not_ready'] ) {
				$count = count( $verdict['not_ready'] );
				$recommend(
					sprintf(
						/* translators: %s: number of domains */
						_n( '%s mapped domain is not ready', '%s mapped domains are not ready', $count, 'closte-operator' ),
						number_format_i18n( $count )
					)
				);
			}
			if ( array() !== $verdict['expiring'] ) {
				$count = count( $verdict['expiring'] );
				$recommend(
					sprintf(
						/* translators: 1: number of certificates, 2: number of days */
						_n( '%1$s certificate of a mapped domain ends within %2$s days', '%1$s certificates of mapped domains end within %2$s days', $count, 'closte-operator' ),
						number_format_i18n( $count ),
						number_format_i18n( Closte_Operator_Screen::EXPIRY_DAYS )
					)
				);
			}
		}
		if ( $overdue ) {
			$recommend( __( 'The closte-operator domain sync is overdue', 'closte-operator' ) );
			$verdict['problems'][] = null === $next_sync || $now <= 0 || $next_sync > $now
				? __( 'The periodic domain sync has not run when it should have. WP-Cron runs only when the site gets visits, or from a system cron calling wp-cron.php when DISABLE_WP_CRON is set: check that one of them runs.', 'closte-operator' )
				: sprintf(
					/* translators: %s: how long ago, e.g. "3 hours" */
					__( 'The periodic domain sync was due %s ago and has not run. WP-Cron runs only when the site gets visits, or from a system cron calling wp-cron.php when DISABLE_WP_CRON is set: check that one of them runs.', 'closte-operator' ),
					self::duration( $now - $next_sync )
				);
		}
		if ( $queued > 0 ) {
			$recommend( __( 'Domain changes are waiting to reach the closte-operator sidecar', 'closte-operator' ) );
			$verdict['problems'][] = sprintf(
				/* translators: %s: number of changes */
				_n( '%s domain change is queued and retried automatically.', '%s domain changes are queued and retried automatically.', $queued, 'closte-operator' ),
				number_format_i18n( $queued )
			);
		}
		return $verdict;
	}

	/**
	 * A span of seconds in words, without WordPress (minutes, hours or days).
	 *
	 * @param int $seconds Seconds.
	 * @return string
	 */
	public static function duration( int $seconds ): string {
		$seconds = max( 0, $seconds );
		if ( $seconds < 3600 ) {
			$n = max( 1, (int) round( $seconds / 60 ) );
			/* translators: %s: number of minutes */
			return sprintf( _n( '%s minute', '%s minutes', $n, 'closte-operator' ), number_format_i18n( $n ) );
		}
		if ( $seconds < 172800 ) {
			$n = (int) round( $seconds / 3600 );
			/* translators: %s: number of hours */
			return sprintf( _n( '%s hour', '%s hours', $n, 'closte-operator' ), number_format_i18n( $n ) );
		}
		$n = (int) round( $seconds / 86400 );
		/* translators: %s: number of days */
		return sprintf( _n( '%s day', '%s days', $n, 'closte-operator' ), number_format_i18n( $n ) );
	}
}
