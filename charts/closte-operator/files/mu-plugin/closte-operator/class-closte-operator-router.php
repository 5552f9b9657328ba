<?php
/**
 * Sends WordPress's requests to Closte's client API to the sidecar instead.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * The `pre_http_request` handler. Ultimate Multisite's Closte integration
 * posts to https://app.closte.com/api/client/ with `apikey`; the request goes
 * to the sidecar's Closte-compatible door with the sidecar token as `apikey`,
 * and its answer comes back as if Closte had sent it. WordPress therefore needs
 * no Closte key at all.
 *
 * When the sidecar cannot be reached the caller gets a Closte-shaped HTTP 503
 * response (never a WP_Error, which Ultimate Multisite's add code cannot
 * handle), and an add or delete is queued for the native door.
 */
final class Closte_Operator_Router {

	const CLOSTE_HOST = 'app.closte.com';
	const CLOSTE_PATH = '/api/client/';

	/**
	 * Constructor.
	 *
	 * @param Closte_Operator_Sidecar $sidecar The sidecar client.
	 * @param Closte_Operator_Queue   $queue   The write queue.
	 */
	public function __construct(
		private Closte_Operator_Sidecar $sidecar,
		private Closte_Operator_Queue $queue
	) {}

	/**
	 * Filter callback for `pre_http_request`.
	 *
	 * @param false|array|object $preempt A response from an earlier filter, or false.
	 * @param array              $args    Request arguments.
	 * @param string             $url     Request URL.
	 * @return false|array|object
	 */
	public function filter( $preempt, $args, $url ) {
		if ( false !== $preempt || ! is_string( $url ) || null === self::endpoint( $url ) ) {
			return $preempt;
		}
		return $this->forward( $url, is_array( $args ) ? $args : array() );
	}

	/**
	 * The path under /api/client/ when `$url` is Closte's client API, else null.
	 *
	 * @param string $url A URL.
	 * @return string|null
	 */
	public static function endpoint( string $url ): ?string {
		$parts = parse_url( $url ); // phpcs:ignore WordPress.WP.AlternativeFunctions.parse_url_parse_url -- no WordPress needed here.
		if ( ! is_array( $parts ) || ! isset( $parts['host'] ) || self::CLOSTE_HOST !== strtolower( $parts['host'] ) ) {
			return null;
		}
		$path = isset( $parts['path'] ) ? $parts['path'] : '';
		if ( 0 !== strpos( $path, self::CLOSTE_PATH ) ) {
			return null;
		}
		return trim( substr( $path, strlen( self::CLOSTE_PATH ) ), '/' );
	}

	/**
	 * Sends the request to the sidecar and returns WordPress's response array.
	 *
	 * @param string $url  A Closte client API URL.
	 * @param array  $args Request arguments as WordPress's HTTP API has them.
	 * @return array
	 */
	public function forward( string $url, array $args ): array {
		$endpoint = (string) self::endpoint( $url );
		$method   = strtoupper( isset( $args['method'] ) ? (string) $args['method'] : 'GET' );
		$headers  = isset( $args['headers'] ) && is_array( $args['headers'] ) ? $args['headers'] : array();
		$is_json  = false !== stripos( self::header( $headers, 'content-type' ), 'json' );
		$token    = $this->sidecar->config->token;

		$query = array();
		$raw   = parse_url( $url, PHP_URL_QUERY ); // phpcs:ignore WordPress.WP.AlternativeFunctions.parse_url_parse_url -- no WordPress needed here.
		if ( is_string( $raw ) && '' !== $raw ) {
			parse_str( $raw, $query );
		}
		$body = isset( $args['body'] ) ? $args['body'] : null;
		if ( in_array( $method, array( 'GET', 'HEAD' ), true ) && is_array( $body ) ) {
			$query = array_merge( $query, $body ); // WordPress sends an array body of a GET as its query.
			$body  = null;
		}
		if ( is_string( $body ) && '' !== $body ) {
			$decoded = $is_json ? json_decode( $body, true ) : null;
			if ( ! $is_json ) {
				parse_str( $body, $decoded );
			}
			$body = is_array( $decoded ) ? $decoded : $body;
		} elseif ( '' === $body ) {
			$body = null;
		}

		// The sidecar token replaces the key wherever the caller put it; with
		// no key at all it goes where Closte's callers put theirs.
		$in_query = array_key_exists( 'apikey', $query );
		$in_body  = is_array( $body ) && array_key_exists( 'apikey', $body );
		if ( $in_query ) {
			$query['apikey'] = $token;
		}
		if ( $in_body ) {
			$body['apikey'] = $token;
		}
		if ( ! $in_query && ! $in_body ) {
			if ( in_array( $method, array( 'GET', 'HEAD' ), true ) || is_string( $body ) ) {
				$query['apikey'] = $token;
			} else {
				$body           = is_array( $body ) ? $body : array();
				$body['apikey'] = $token;
			}
		}

		$op = self::operation( $endpoint, $query, is_array( $body ) ? $body : array() );

		// Closte's API is form-encoded, and so is the sidecar's door to it.
		$send = array( 'Accept' => 'application/json' );
		if ( is_array( $body ) ) {
			$send['Content-Type'] = 'application/x-www-form-urlencoded';
			$body                 = http_build_query( $body, '', '&' );
		}
		// Never longer than the sidecar's timeout, whatever the caller allows (45 s for Ultimate Multisite).
		$timeout = $this->sidecar->config->timeout;
		if ( isset( $args['timeout'] ) && (float) $args['timeout'] > 0 ) {
			$timeout = min( (float) $args['timeout'], $timeout );
		}
		$request = function () use ( $method, $endpoint, $query, $body, $send, $timeout ) {
			return $this->sidecar->closte( $method, $endpoint, http_build_query( $query, '', '&' ), $body, $send, $timeout );
		};

		if ( null === $op ) {
			if ( $this->queue->is_down() ) {
				$result = Closte_Operator_Result::unreachable( 'it was unreachable moments ago' );
			} else {
				$result = $request();
				$this->queue->observe( $result );
			}
		} else {
			$result = $this->queue->attempt( $op, $request ) ?? Closte_Operator_Result::unreachable( 'it was unreachable moments ago' );
		}

		if ( ! $result->reached() ) {
			$error = 'closte-operator sidecar unreachable (' . $result->error . ')';
			if ( null !== $op ) {
				$error .= '; the change is queued and will be retried';
			}
			return self::response(
				503,
				(string) json_encode( // phpcs:ignore WordPress.WP.AlternativeFunctions.json_encode_json_encode -- runs without WordPress in the unit tests.
					array(
						'success' => false,
						'error'   => $error,
					),
					JSON_UNESCAPED_SLASHES
				)
			);
		}
		return self::response( $result->status, $result->body );
	}

	/**
	 * The native-door operation that an add or delete with a domain stands for.
	 *
	 * @param string $endpoint Path under /api/client/.
	 * @param array  $query    Query parameters.
	 * @param array  $body     Form parameters.
	 * @return array|null
	 */
	public static function operation( string $endpoint, array $query, array $body ): ?array {
		$params = array_merge( $query, $body );
		$domain = isset( $params['domain'] ) && is_scalar( $params['domain'] ) ? Closte_Operator_Domains::normalize( (string) $params['domain'] ) : '';
		if ( '' === $domain ) {
			return null;
		}
		switch ( strtolower( $endpoint ) ) {
			case 'adddomainalias':
				return Closte_Operator_Queue::put( $domain, null );
			case 'deletedomainalias':
				return Closte_Operator_Queue::delete( $domain );
		}
		return null;
	}

	/**
	 * A response array in the shape wp_remote_request() returns.
	 *
	 * @param int    $status HTTP status.
	 * @param string $body   Body.
	 * @return array
	 */
	public static function response( int $status, string $body ): array {
		$messages = array(
			200 => 'OK',
			201 => 'Created',
			204 => 'No Content',
			400 => 'Bad Request',
			401 => 'Unauthorized',
			403 => 'Forbidden',
			404 => 'Not Found',
			409 => 'Conflict',
			429 => 'Too Many Requests',
			500 => 'Internal Server Error',
			502 => 'Bad Gateway',
			503 => 'Service Unavailable',
			504 => 'Gateway Timeout',
		);
		return array(
			'headers'  => array( 'content-type' => 'application/json' ),
			'body'     => $body,
			'response' => array(
				'code'    => $status,
				'message' => isset( $messages[ $status ] ) ? $messages[ $status ] : '',
			),
			'cookies'  => array(),
			'filename' => null,
		);
	}

	/**
	 * A request header's value, whatever the case of its name.
	 *
	 * @param array  $headers Headers.
	 * @param string $name    Lower-case name.
	 * @return string
	 */
	private static function header( array $headers, string $name ): string {
		foreach ( $headers as $key => $value ) {
			if ( strtolower( (string) $key ) === $name ) {
				return is_array( $value ) ? implode( ',', $value ) : (string) $value;
			}
		}
		return '';
	}
}
